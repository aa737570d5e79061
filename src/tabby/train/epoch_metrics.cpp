#include "tabby/train/epoch_metrics.h"

#include <cmath>

namespace tabby {

std::optional<EpochMetrics::NonFinite> EpochMetrics::read() {
  if (pending_sizes_.empty()) return std::nullopt;
  const auto losses = torch::stack(pending_loss_).cpu();
  const auto corrects = torch::stack(pending_correct_).cpu();
  std::optional<NonFinite> bad;
  for (size_t i = 0; i < pending_sizes_.size(); ++i) {
    ++steps_;
    const double loss = losses[static_cast<int64_t>(i)].item<double>();
    if (!std::isfinite(loss)) {
      if (!bad) bad = NonFinite{steps_, loss};
      continue;
    }
    loss_sum_ += loss * static_cast<double>(pending_sizes_[i]);
    correct_sum_ += corrects[static_cast<int64_t>(i)].item<double>();
    seen_ += pending_sizes_[i];
  }
  pending_loss_.clear();
  pending_correct_.clear();
  pending_sizes_.clear();
  return bad;
}

}  // namespace tabby
