// Batches from an in-memory tensor, shuffled per epoch and prepared by a
// background thread while the model computes. The source is either the image
// cache (uint8 (N,H,W,3): batches come out float (B,3,H,W) in [0,255]) or a
// feature cache (float (N,...): rows as they are).
//
// The order of epoch e is a permutation drawn from derive_seed(seed, e), so a
// run can be repeated, or resumed at any epoch, without saved RNG state.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tabby {

struct Batch {
  torch::Tensor inputs;   // (B,3,H,W) float in [0,255], or (B,...) features; on the device
  torch::Tensor labels;   // (B,) int64 on the device
  torch::Tensor indices;  // (B,) int64 on the CPU: rows of the source
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  int prefetch = 2;           // batches prepared ahead
  bool drop_remainder = false;

  // Reshuffled every epoch from `seed`: training.
  static LoaderOptions training(int64_t batch_size, uint64_t seed, const torch::Device& device) {
    return {batch_size, true, seed, device, 2, false};
  }
  // Every row once, in order: evaluation, prediction, feature extraction.
  static LoaderOptions in_order(int64_t batch_size, const torch::Device& device) {
    return {batch_size, false, 0, device, 2, false};
  }
};

class BatchLoader {
 public:
  BatchLoader(torch::Tensor source, torch::Tensor labels, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t num_samples() const { return source_.size(0); }
  int64_t num_batches() const;
  int64_t batch_size() const { return options_.batch_size; }

  // Rows of `epoch` in the order they will be served.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Begins serving `epoch` (stops any epoch in progress).
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch, nullopt after the last one.
  std::optional<Batch> next();

 private:
  Batch make_batch(const std::vector<int64_t>& order, int64_t batch_index) const;
  void stop();

  torch::Tensor source_, labels_;
  LoaderOptions options_;
  bool images_;  // uint8 NHWC source

  std::thread producer_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  int64_t produced_ = 0, consumed_ = 0, total_ = 0;
};

}  // namespace tabby
