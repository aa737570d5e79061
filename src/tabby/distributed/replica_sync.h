// Keeping every rank's copy of the model the same. There is no C++
// DistributedDataParallel module, so tabby does what it does by hand:
// parameters and buffers broadcast from rank 0 at the start, batch-norm
// statistics broadcast from rank 0 before each step (DDP's broadcast_buffers),
// and after each backward pass the gradients summed over the ranks, in
// flattened buckets whose all-reduces run together and are all waited for
// before anything reads a gradient.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tabby/distributed/collective.h"
#include "tabby/nn/network.h"

namespace tabby {

// Every parameter and buffer of `net` takes rank 0's values.
void broadcast_model(nn::NetworkImpl& net, Collective& group);

// The buffers training changes: running statistics of the batch-norm layers
// in training mode among layers [first_layer, end). Frozen ones (inference
// mode) never change and are left out.
class BufferSync {
 public:
  BufferSync(nn::NetworkImpl& net, size_t first_layer);
  bool empty() const { return buffers_.empty(); }
  // Rank 0's values to every rank, one broadcast per element type.
  void broadcast(Collective& group);

 private:
  std::vector<torch::Tensor> buffers_;
};

class GradientSync {
 public:
  // DDP's default bucket size.
  static constexpr int64_t kBucketBytes = int64_t{25} << 20;

  explicit GradientSync(std::vector<torch::Tensor> params, int64_t bucket_bytes = kBucketBytes);
  // Sums every parameter's gradient over the ranks (a rank without one, whose
  // share of the step was empty, adds zeros), and `stats` (float64, the
  // step's loss and counts) in the same round.
  void sum(Collective& group, torch::Tensor& stats);

 private:
  std::vector<torch::Tensor> params_;
  std::vector<std::vector<size_t>> buckets_;  // indices into params_
};

// SHA-256 over every parameter and buffer's bytes, in name order: equal on
// every rank exactly when the replicas are bit-identical.
std::string model_digest(const nn::NetworkImpl& net);

}  // namespace tabby
