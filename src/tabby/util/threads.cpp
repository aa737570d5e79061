#include "tabby/util/threads.h"

#include <thread>

namespace tabby {

int default_thread_count() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace tabby
