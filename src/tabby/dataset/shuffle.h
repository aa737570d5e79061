// Seeded permutations that are the same on every compiler and platform.
// std::shuffle and std::uniform_int_distribution are implementation-defined, so a
// split made with them could differ between this machine and the GPU machine;
// here both steps are spelled out. std::mt19937_64's output sequence is fixed by
// the C++ standard, so the whole chain is reproducible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace tabby {

// The purposes a dataset seed is derived for: derive_seed(user_seed, {purpose, ...})
// keeps the file shuffle, the validation split and the stratified split
// independent of each other for one user seed. Values are part of the
// reproducibility contract: never renumber them.
enum class SeedPurpose : uint64_t {
  shuffle_files = 0x5348'5546,     // "SHUF"
  validation_split = 0x5641'4c49,  // "VALI"
  stratified_split = 0x5354'5241,  // "STRA"
  slice_order = 0x534c'4943,       // "SLIC"
};

// A uniform integer in [0, bound), bound >= 1, without modulo bias: draws are
// rejected while they fall below 2^64 mod bound (the classic "threshold"
// rejection), then reduced modulo bound.
uint64_t uniform_below(std::mt19937_64& generator, uint64_t bound);

// A permutation of 0..n-1: start from the identity, then Fisher–Yates from the
// back — for i = n-1 down to 1, swap element i with element
// uniform_below(generator, i + 1) — with std::mt19937_64 seeded by `seed`.
std::vector<size_t> seeded_permutation(size_t n, uint64_t seed);

}  // namespace tabby
