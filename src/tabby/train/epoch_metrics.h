#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace tabby {

// Running loss and accuracy of an epoch. Each step's values stay on the device
// and are read back every `read_every` steps: on a GPU every read stalls the
// queue of work, on the CPU it costs nothing (read_every 1, and the check for a
// non-finite loss happens before that step's update).
class EpochMetrics {
 public:
  explicit EpochMetrics(int64_t read_every) : read_every_(std::max<int64_t>(1, read_every)) {}

  void add(const torch::Tensor& loss, const torch::Tensor& correct, int64_t batch_size) {
    pending_loss_.push_back(loss.detach().to(torch::kFloat64));
    pending_correct_.push_back(correct.detach().to(torch::kFloat64));
    pending_sizes_.push_back(batch_size);
  }
  bool due() const { return pending() >= read_every_; }
  int64_t pending() const { return static_cast<int64_t>(pending_sizes_.size()); }

  struct NonFinite {
    int64_t step;  // 1-based within the epoch
    double value;
  };
  // Folds the pending steps into the sums; the first non-finite loss, if any.
  std::optional<NonFinite> read();
  double loss() const { return loss_sum_ / static_cast<double>(std::max<int64_t>(seen_, 1)); }
  double accuracy() const { return correct_sum_ / static_cast<double>(std::max<int64_t>(seen_, 1)); }

 private:
  int64_t read_every_;
  std::vector<torch::Tensor> pending_loss_, pending_correct_;
  std::vector<int64_t> pending_sizes_;
  int64_t steps_ = 0, seen_ = 0;
  double loss_sum_ = 0, correct_sum_ = 0;
};

}  // namespace tabby
