// Batches from a row source (pipeline/row_source.h), shuffled per epoch and
// prepared by a background thread while the model computes. The source is
// either images (the image cache's uint8 (N,H,W,3) tensor, in memory or mapped
// from disk, or files decoded per batch: batches come out float (B,3,H,W) in
// [0,255]) or a feature cache (float (N,...): rows as they are).
//
// The order of epoch e is a permutation drawn from derive_seed(seed, e), so a
// run can be repeated, or resumed at any epoch, without saved RNG state.
//
// In a data-parallel job (sharded(rank, world)) every rank draws the same
// order, a step takes the next world x batch_size rows of it (the global
// batch) and each rank serves its contiguous part of those: the ranks' batches
// of one step together are the batch one process with batch_size x world would
// see, and every epoch deals the rows out anew.
#pragma once

#include <torch/torch.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tabby/pipeline/row_source.h"

namespace tabby {

struct Batch {
  torch::Tensor inputs;   // (B,3,H,W) float in [0,255], or (B,...) features; on the device
  torch::Tensor labels;   // (B,) int64 on the device
  torch::Tensor indices;  // (B,) int64 on the CPU: rows of the source
  int64_t global_rows = 0;  // rows of this step over every rank (B without sharding)
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  int prefetch = 2;           // batches prepared ahead
  bool drop_remainder = false;
  int rank = 0, world = 1;    // this rank's part of each global batch

  // The same, as rank `rank` of `world` ranks serves it (see the header comment).
  LoaderOptions sharded(int rank_, int world_) const {
    LoaderOptions o = *this;
    o.rank = rank_;
    o.world = world_;
    return o;
  }

  // Reshuffled every epoch from `seed`: training.
  static LoaderOptions training(int64_t batch_size, uint64_t seed, const torch::Device& device) {
    return {batch_size, true, seed, device, 2, false, 0, 1};
  }
  // Every row once, in order: evaluation, prediction, feature extraction.
  static LoaderOptions in_order(int64_t batch_size, const torch::Device& device) {
    return {batch_size, false, 0, device, 2, false, 0, 1};
  }
};

class BatchLoader {
 public:
  BatchLoader(RowSource source, torch::Tensor labels, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  int64_t num_samples() const { return source_.size(); }
  int64_t num_batches() const;
  int64_t batch_size() const { return options_.batch_size; }
  // Rows of one step over every rank: batch_size x world.
  int64_t global_batch_size() const { return options_.batch_size * options_.world; }

  // Rows of `epoch` in the order they will be served.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Begins serving `epoch` (stops any epoch in progress).
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch, nullopt after the last one.
  std::optional<Batch> next();

 private:
  Batch make_batch(const std::vector<int64_t>& order, int64_t batch_index) const;
  void stop();

  RowSource source_;
  torch::Tensor labels_;
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
