// Per-sample prediction metrics: accuracy, log loss, top losses.
#include "tabby/metrics/predictions.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tabby/util/error.h"

namespace tabby::metrics {

namespace {

void check_rows(const std::vector<float>& probabilities, int num_classes, const char* what) {
  if (num_classes < 1 || probabilities.size() % static_cast<size_t>(num_classes) != 0) {
    throw Error(fmt::format("{}: {} probabilities do not form rows of {} classes", what, probabilities.size(),
                            num_classes),
                "pass an (N, C) row-major array with C = number of classes");
  }
}

// Stable ranking of `candidates` by key, largest first, NaN above all numbers.
std::vector<size_t> rank_descending(std::vector<size_t> candidates, const std::vector<float>& key, size_t k) {
  auto greater = [&](size_t a, size_t b) {
    const bool nan_a = std::isnan(key[a]), nan_b = std::isnan(key[b]);
    if (nan_a || nan_b) return nan_a && !nan_b;
    return key[a] > key[b];
  };
  std::stable_sort(candidates.begin(), candidates.end(), greater);
  if (candidates.size() > k) candidates.resize(k);
  return candidates;
}

}  // namespace

double accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred) {
  if (y_true.size() != y_pred.size()) {
    throw Error(fmt::format("accuracy: {} true labels but {} predictions", y_true.size(), y_pred.size()));
  }
  if (y_true.empty()) return 0.0;
  size_t correct = 0;
  for (size_t i = 0; i < y_true.size(); ++i) correct += y_true[i] == y_pred[i];
  return static_cast<double>(correct) / static_cast<double>(y_true.size());
}

std::vector<float> per_sample_log_loss(const std::vector<float>& probabilities, const std::vector<int>& y_true,
                                       int num_classes) {
  check_rows(probabilities, num_classes, "log loss");
  const size_t rows = probabilities.size() / static_cast<size_t>(num_classes);
  if (rows != y_true.size()) {
    throw Error(fmt::format("log loss: {} rows of probabilities but {} labels", rows, y_true.size()));
  }
  constexpr double kEpsilon = 1e-7;
  std::vector<float> out(rows);
  for (size_t r = 0; r < rows; ++r) {
    const int t = y_true[r];
    if (t < 0 || t >= num_classes) {
      throw Error(fmt::format("log loss: sample {} has label {}, outside 0..{}", r, t, num_classes - 1));
    }
    const double p = probabilities[r * num_classes + t];
    // NaN stays NaN: a broken prediction should be visible, not hidden.
    out[r] = static_cast<float>(-std::log(std::isnan(p) ? p : std::clamp(p, kEpsilon, 1.0)));
  }
  return out;
}

std::vector<size_t> top_losses(const std::vector<float>& per_sample_loss, size_t k) {
  std::vector<size_t> all(per_sample_loss.size());
  std::iota(all.begin(), all.end(), size_t{0});
  return rank_descending(std::move(all), per_sample_loss, k);
}

}  // namespace tabby::metrics
