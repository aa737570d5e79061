#include <cstdio>
int main() { std::puts("tabby: under construction"); return 0; }
