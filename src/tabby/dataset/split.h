// Seeded training/validation(/test) splits of one dataset: Keras'
// `validation_split` + `subset`, and a stratified split in the spirit of
// scikit-learn's `train_test_split(stratify=y)`. Same seed, same files, every run
// and on every platform (dataset/shuffle.h); the parts never overlap and cover
// the dataset.
#pragma once

#include <cstdint>

#include "tabby/dataset/dataset.h"

namespace tabby {

struct TrainValSplit {
  Dataset train, validation;
};

// Keras `validation_split`: permute the samples with
// seeded_permutation(n, derive_seed(seed, {SeedPurpose::validation_split})); the
// last floor(n * fraction) of that order are validation, the rest training
// (floor with a 1e-6 tolerance, so 0.29 of 100 is 29 despite 0.29*100 being
// 28.999...). Both parts keep the input's order (a subset, not a reshuffle).
// fraction outside (0,1) is a UsageError; a split that leaves either side empty
// (too few samples) is a tabby::Error.
TrainValSplit split_validation(const Dataset& dataset, double fraction, uint64_t seed);

// Stratified split. The rule, exactly:
// 1. V = round(n * fraction) (halves up), clamped to [1, n-1]: the validation total.
// 2. Class k with c_k samples gets v_k validation samples, sum v_k = V:
//    start from floor(q_k), q_k = c_k * V / n (its exact share), bounded to
//    [1, c_k - 1] when c_k >= 2 (so it appears on both sides) and to 0 when
//    c_k == 1 (a lone sample trains). Then, while the total is short, add one to
//    the class with the largest q_k - v_k that can still grow; while it is over,
//    take one from the class with the largest v_k - q_k that can still shrink
//    (ties: lower label). If V is too small (or large) for every class to be on
//    both sides, those bounds are dropped: the total V always wins.
// 3. Within class k, the last v_k of seeded_permutation(c_k,
//    derive_seed(seed, {SeedPurpose::stratified_split, k})) are validation.
// Both parts keep the input's order. fraction outside (0,1) is a UsageError;
// fewer than 2 samples is a tabby::Error.
TrainValSplit split_stratified(const Dataset& dataset, double fraction, uint64_t seed);

struct TrainValTestSplit {
  Dataset train, validation, test;
};

// Two stratified splits, fractions of the whole dataset: first `test_fraction`
// is split off as test (seed), then validation is split off the rest with
// fraction validation_fraction / (1 - test_fraction) (derive_seed(seed, {2})).
// A zero fraction leaves that part empty. Fractions must be >= 0 with sum < 1.
TrainValTestSplit split_stratified(const Dataset& dataset, double validation_fraction, double test_fraction,
                                   uint64_t seed);

}  // namespace tabby
