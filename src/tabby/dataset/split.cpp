// Training/validation splits (rules documented in split.h).
#include "tabby/dataset/split.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "tabby/dataset/shuffle.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

void check_fraction(double fraction, const char* what) {
  if (!(fraction > 0.0 && fraction < 1.0)) {
    throw UsageError(fmt::format("{} must be between 0 and 1 (both excluded), got {}", what, fraction),
                     "e.g. 0.2 keeps 20% of the images for validation");
  }
}

// Split `dataset` by a membership mask, each side in the input's order.
TrainValSplit split_by_mask(const Dataset& dataset, const std::vector<bool>& is_validation, const std::string& how) {
  std::vector<size_t> train, validation;
  for (size_t i = 0; i < is_validation.size(); ++i) (is_validation[i] ? validation : train).push_back(i);
  TrainValSplit split{subset(dataset, train), subset(dataset, validation)};
  split.train.source = dataset.source + " (training subset, " + how + ")";
  split.validation.source = dataset.source + " (validation subset, " + how + ")";
  return split;
}

}  // namespace

TrainValSplit split_validation(const Dataset& dataset, double fraction, uint64_t seed) {
  check_fraction(fraction, "the validation split");
  const size_t n = dataset.samples.size();
  const auto n_validation = static_cast<size_t>(std::floor(static_cast<double>(n) * fraction + 1e-6));
  if (n_validation == 0 || n_validation >= n) {
    throw Error(fmt::format("a validation split of {} of {} samples in '{}' leaves no {} samples", fraction, n,
                            dataset.source, n_validation == 0 ? "validation" : "training"),
                "use more images or another validation split");
  }
  const std::vector<size_t> order =
      seeded_permutation(n, derive_seed(seed, {static_cast<uint64_t>(SeedPurpose::validation_split)}));
  std::vector<bool> is_validation(n, false);
  for (size_t i = n - n_validation; i < n; ++i) is_validation[order[i]] = true;
  TrainValSplit split = split_by_mask(dataset, is_validation, fmt::format("validation_split={} seed={}", fraction, seed));
  log::infof("Using {} files for training.", split.train.size());
  log::infof("Using {} files for validation.", split.validation.size());
  return split;
}

TrainValSplit split_stratified(const Dataset& dataset, double fraction, uint64_t seed) {
  check_fraction(fraction, "the split fraction");
  const size_t n = dataset.samples.size();
  if (n < 2) {
    throw Error(fmt::format("cannot split '{}': it has {} sample(s)", dataset.source, n), "use at least 2 images");
  }
  const size_t k_classes = dataset.class_names.size();
  std::vector<std::vector<size_t>> members(k_classes);
  for (size_t i = 0; i < n; ++i) {
    const int label = dataset.samples[i].label;
    if (label < 0 || static_cast<size_t>(label) >= k_classes) {
      throw Error(fmt::format("sample '{}' has label {} but '{}' has {} classes", dataset.samples[i].path.string(),
                              label, dataset.source, k_classes));
    }
    members[static_cast<size_t>(label)].push_back(i);
  }

  // Step 1: the validation total.
  const double exact_total = static_cast<double>(n) * fraction;
  const auto total = std::clamp<size_t>(static_cast<size_t>(std::floor(exact_total + 0.5 + 1e-9)), 1, n - 1);

  // Step 2: per-class counts.
  std::vector<size_t> low(k_classes), high(k_classes), take(k_classes);
  std::vector<double> share(k_classes);
  size_t sum_low = 0, sum_high = 0;
  for (size_t k = 0; k < k_classes; ++k) {
    const size_t count = members[k].size();
    low[k] = count >= 2 ? 1 : 0;
    high[k] = count >= 2 ? count - 1 : 0;
    sum_low += low[k];
    sum_high += high[k];
    share[k] = static_cast<double>(count) * static_cast<double>(total) / static_cast<double>(n);
  }
  if (sum_low > total) std::fill(low.begin(), low.end(), 0);
  if (sum_high < total) {
    for (size_t k = 0; k < k_classes; ++k) high[k] = members[k].size();
  }
  size_t sum = 0;
  for (size_t k = 0; k < k_classes; ++k) {
    take[k] = std::clamp(static_cast<size_t>(std::floor(share[k] + 1e-9)), low[k], high[k]);
    sum += take[k];
  }
  while (sum < total) {
    size_t best = k_classes;
    for (size_t k = 0; k < k_classes; ++k) {
      if (take[k] < high[k] &&
          (best == k_classes || share[k] - static_cast<double>(take[k]) > share[best] - static_cast<double>(take[best])))
        best = k;
    }
    ++take[best];
    ++sum;
  }
  while (sum > total) {
    size_t best = k_classes;
    for (size_t k = 0; k < k_classes; ++k) {
      if (take[k] > low[k] &&
          (best == k_classes || static_cast<double>(take[k]) - share[k] > static_cast<double>(take[best]) - share[best]))
        best = k;
    }
    --take[best];
    --sum;
  }

  // Step 3: which samples, per class.
  std::vector<bool> is_validation(n, false);
  for (size_t k = 0; k < k_classes; ++k) {
    const size_t count = members[k].size();
    const std::vector<size_t> order =
        seeded_permutation(count, derive_seed(seed, {static_cast<uint64_t>(SeedPurpose::stratified_split), k}));
    for (size_t i = count - take[k]; i < count; ++i) is_validation[members[k][order[i]]] = true;
  }
  return split_by_mask(dataset, is_validation, fmt::format("stratified {} seed={}", fraction, seed));
}

TrainValTestSplit split_stratified(const Dataset& dataset, double validation_fraction, double test_fraction,
                                   uint64_t seed) {
  if (!(validation_fraction >= 0.0 && test_fraction >= 0.0 && validation_fraction + test_fraction < 1.0)) {
    throw UsageError(fmt::format("validation ({}) and test ({}) fractions must be >= 0 and add up to less than 1",
                                 validation_fraction, test_fraction),
                     "e.g. 0.15 and 0.15 leave 70% for training");
  }
  TrainValTestSplit out;
  Dataset rest = dataset;
  out.test.class_names = dataset.class_names;
  out.validation.class_names = dataset.class_names;
  if (test_fraction > 0.0) {
    TrainValSplit first = split_stratified(dataset, test_fraction, seed);
    rest = std::move(first.train);
    out.test = std::move(first.validation);
    out.test.source = dataset.source + fmt::format(" (test subset, stratified {} seed={})", test_fraction, seed);
  }
  if (validation_fraction > 0.0) {
    TrainValSplit second = split_stratified(rest, validation_fraction / (1.0 - test_fraction), derive_seed(seed, {2}));
    rest = std::move(second.train);
    out.validation = std::move(second.validation);
    out.validation.source =
        dataset.source + fmt::format(" (validation subset, stratified {} seed={})", validation_fraction, seed);
  }
  out.train = std::move(rest);
  out.train.source = dataset.source + fmt::format(" (training subset, stratified seed={})", seed);
  return out;
}

}  // namespace tabby
