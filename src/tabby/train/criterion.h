// The training loss, composed from the run's options rather than fixed in the
// network: cross-entropy on logits (binary cross-entropy for a one-unit
// sigmoid output), with label smoothing and the soft targets of mixup and
// cutmix. Evaluation uses the plain loss, so validation losses of runs with
// and without smoothing compare.
//
// Definitions, as PyTorch's: with K classes and smoothing e, the target of a
// row is q = (1 - e) * t + e / K, where t is its one-hot label (or the mixed
// labels' weights), and the loss is -sum_k q_k log softmax(z)_k — what
// torch.nn.CrossEntropyLoss(label_smoothing=e) computes for hard and for
// probability targets. A one-unit output (K = 2 for smoothing) uses
// q = (1 - e) * t + e / 2 with binary cross-entropy, as Keras'
// BinaryCrossentropy(label_smoothing=e).
#pragma once

#include <torch/torch.h>

#include "tabby/nn/network.h"

namespace tabby {

// What a training batch is compared with: its labels and, when the images
// were mixed, each row's second label and the weight of the first.
struct Targets {
  torch::Tensor labels;        // (B,) int64
  torch::Tensor mixed_labels;  // (B,) int64, or undefined: not mixed
  double weight = 1.0;         // of `labels`; 1 - weight goes to mixed_labels
  bool mixed() const { return mixed_labels.defined(); }
};

class Criterion {
 public:
  // `binary`: the network has one sigmoid unit for two classes.
  Criterion(bool binary, int64_t num_classes, double label_smoothing = 0.0);

  // Mean loss over the batch (B,) of logits (B,K) or (B,1).
  torch::Tensor mean(const torch::Tensor& logits, const Targets& targets) const;
  // Per-row losses (B,) against hard labels, without smoothing: evaluation's loss.
  torch::Tensor per_sample(const torch::Tensor& logits, const torch::Tensor& labels) const;

  double label_smoothing() const { return smoothing_; }

 private:
  // (B,K) target probabilities, or (B,) for a binary output.
  torch::Tensor target_distribution(const Targets& targets, const torch::TensorOptions& options) const;

  bool binary_;
  int64_t classes_;
  double smoothing_;
};

// The criterion of `net`'s output (one sigmoid unit or K logits).
Criterion criterion_for(const nn::NetworkImpl& net, double label_smoothing = 0.0);

}  // namespace tabby
