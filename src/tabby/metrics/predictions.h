// Metrics computed from per-sample predictions: accuracy, per-sample log loss,
// and "top losses" (fastai's name for the samples with the largest loss), for
// finding mislabelled or hard images.
#pragma once

#include <cstddef>
#include <vector>

namespace tabby::metrics {

// Fraction of positions where y_true == y_pred; 0 for empty input.
// tabby::Error when the lengths differ.
double accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred);

// -log(p[true class]) per sample, with p clamped to [1e-7, 1] (as Keras does)
// so a zero probability gives a large finite loss, not infinity.
// probabilities is (N, C) row-major; tabby::Error on mismatched sizes or labels.
std::vector<float> per_sample_log_loss(const std::vector<float>& probabilities,
                                       const std::vector<int>& y_true, int num_classes);

// Indices of the k largest losses, largest first; ties keep index order. A
// NaN loss ranks above every number (a sample worth looking at).
std::vector<size_t> top_losses(const std::vector<float>& per_sample_loss, size_t k);

}  // namespace tabby::metrics
