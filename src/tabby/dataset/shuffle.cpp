// Fisher–Yates over std::mt19937_64 with unbiased bounded draws (see shuffle.h).
#include "tabby/dataset/shuffle.h"

#include <numeric>
#include <utility>

namespace tabby {

uint64_t uniform_below(std::mt19937_64& generator, uint64_t bound) {
  if (bound <= 1) return 0;
  // 2^64 mod bound, computed without 128-bit arithmetic: (2^64 - bound) mod bound.
  const uint64_t threshold = (0 - bound) % bound;
  for (;;) {
    const uint64_t draw = generator();
    if (draw >= threshold) return draw % bound;
  }
}

std::vector<size_t> seeded_permutation(size_t n, uint64_t seed) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 generator(seed);
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(generator, i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

}  // namespace tabby
