// Deterministic seeds derived from (seed, epoch, step, ...). Every random choice
// in tabby (shuffles, splits, augmentation, dropout) draws from a seed computed
// here, so a run can be repeated, and resumed mid-way, without saving RNG state.
#pragma once

#include <cstdint>
#include <initializer_list>

namespace tabby {

// SplitMix64 finaliser: a well-mixed 64-bit value from any 64-bit input.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Combines a seed with a path of integers (purpose, epoch, step, ...).
inline uint64_t derive_seed(uint64_t seed, std::initializer_list<uint64_t> path) {
  uint64_t h = splitmix64(seed);
  for (uint64_t p : path) h = splitmix64(h ^ splitmix64(p + 0x632be59bd9b4e019ULL));
  return h;
}

}  // namespace tabby
