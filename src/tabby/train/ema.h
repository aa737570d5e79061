// An exponential moving average of a network's weights (and batch-norm
// statistics), updated after every optimiser step:
//   average = d * average + (1 - d) * current,  d = min(decay, (1 + n) / (10 + n))
// where n counts the updates before this one — TensorFlow's
// ExponentialMovingAverage with num_updates, so the average follows the
// weights closely while a fresh head moves fast and settles to `decay` later.
// Integer buffers (batch counts) are copied. The average starts as a copy of
// the weights when training starts; it lives in the checkpoint, and the
// trainer validates, keeps and exports it instead of the raw weights.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "tabby/nn/network.h"

namespace tabby {

// A copy of `weights` that no later training step changes.
nn::TensorMap copy_weights(const nn::TensorMap& weights);

class WeightAverage {
 public:
  WeightAverage(const nn::NetworkImpl& net, double decay);
  // Continues an average saved in a checkpoint after `updates` updates.
  WeightAverage(nn::TensorMap average, double decay, int64_t updates);

  void update(const nn::NetworkImpl& net);
  // The decay the next update uses.
  double next_decay() const;

  const nn::TensorMap& weights() const { return average_; }
  int64_t updates() const { return updates_; }

 private:
  nn::TensorMap average_;
  double decay_;
  int64_t updates_ = 0;
};

// Puts `weights` into `net` for its lifetime, then the network's own weights back.
class SwappedWeights {
 public:
  SwappedWeights(nn::NetworkImpl& net, const nn::TensorMap& weights);
  ~SwappedWeights();
  SwappedWeights(const SwappedWeights&) = delete;
  SwappedWeights& operator=(const SwappedWeights&) = delete;

 private:
  nn::NetworkImpl& net_;
  nn::TensorMap own_;
};

}  // namespace tabby
