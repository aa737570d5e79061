#include "tabby/train/ema.h"

#include <algorithm>

namespace tabby {

nn::TensorMap copy_weights(const nn::TensorMap& weights) {
  nn::TensorMap copy;
  for (const auto& [name, tensor] : weights) copy.emplace(name, tensor.detach().clone());
  return copy;
}

WeightAverage::WeightAverage(const nn::NetworkImpl& net, double decay)
    : average_(copy_weights(net.named_state())), decay_(decay) {}

WeightAverage::WeightAverage(nn::TensorMap average, double decay, int64_t updates)
    : average_(std::move(average)), decay_(decay), updates_(updates) {}

double WeightAverage::next_decay() const {
  const double n = static_cast<double>(updates_);
  return std::min(decay_, (1.0 + n) / (10.0 + n));
}

void WeightAverage::update(const nn::NetworkImpl& net) {
  torch::NoGradGuard no_grad;
  const double d = next_decay();
  for (const auto& [name, current] : net.named_state()) {
    auto it = average_.find(name);
    if (it == average_.end()) continue;
    torch::Tensor& avg = it->second;
    if (avg.device() != current.device()) avg = avg.to(current.device());
    if (current.is_floating_point()) avg.lerp_(current.detach().to(avg.dtype()), 1.0 - d);
    else avg.copy_(current);
  }
  ++updates_;
}

SwappedWeights::SwappedWeights(nn::NetworkImpl& net, const nn::TensorMap& weights)
    : net_(net), own_(copy_weights(net.named_state())) {
  net.load_named_state(weights, /*strict=*/true);
}

SwappedWeights::~SwappedWeights() {
  try {
    net_.load_named_state(own_, /*strict=*/true);
  } catch (...) {
    // The same names and shapes were just read from this network; nothing to report from a destructor.
  }
}

}  // namespace tabby
