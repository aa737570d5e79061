// Metrics computed from per-sample predictions: accuracy, argmax of class
// probabilities, per-sample log loss, and "top losses" (fastai's name for the
// samples the model got most confidently wrong), for finding mislabelled or
// hard images.
#pragma once

#include <cstddef>
#include <vector>

namespace tabby::metrics {

// Fraction of positions where y_true == y_pred; 0 for empty input.
// tabby::Error when the lengths differ.
double accuracy(const std::vector<int>& y_true, const std::vector<int>& y_pred);

// probabilities is (N, C) row-major. Returns the index of the largest entry of
// each row (first one on ties; NaN entries never win). tabby::Error when the
// size is not a multiple of num_classes.
std::vector<int> argmax_rows(const std::vector<float>& probabilities, int num_classes);

// -log(p[true class]) per sample, with p clamped to [1e-7, 1] (as Keras does)
// so a zero probability gives a large finite loss, not infinity.
// probabilities is (N, C) row-major; tabby::Error on mismatched sizes or labels.
std::vector<float> per_sample_log_loss(const std::vector<float>& probabilities,
                                       const std::vector<int>& y_true, int num_classes);

// Mean of per_sample_log_loss; 0 for empty input.
double log_loss(const std::vector<float>& probabilities, const std::vector<int>& y_true, int num_classes);

// Indices of the k largest losses, largest first; ties keep index order. A
// NaN loss ranks above every number (a sample worth looking at).
std::vector<size_t> top_losses(const std::vector<float>& per_sample_loss, size_t k);

// Indices of wrong predictions (y_true != y_pred), most confident first:
// confidence[i] is the probability the model gave its predicted class.
// At most k. tabby::Error when the lengths differ.
std::vector<size_t> most_confident_mistakes(const std::vector<int>& y_true, const std::vector<int>& y_pred,
                                            const std::vector<float>& confidence, size_t k);

}  // namespace tabby::metrics
