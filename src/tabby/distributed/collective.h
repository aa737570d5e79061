// What data-parallel training needs from the processes it runs in: the
// collective operations of one process group (LibTorch's c10d, in
// distributed/c10d_group.h). Every call is collective: each rank makes the
// same calls in the same order, or the job stops with an error naming the
// rank that is missing. fit() without one trains in this process alone.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace tabby {

class Collective {
 public:
  virtual ~Collective() = default;

  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_main() const { return rank() == 0; }
  // "gloo" or "nccl"
  virtual std::string backend() const = 0;

  // Every rank's `tensors` take root's values (in place; same shapes on every rank).
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root = 0) = 0;
  // Element-wise sums over every rank, in place. The operations are started
  // together and all waited for before this returns.
  virtual void allreduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // Every rank's rows (any count, same trailing shape and type), concatenated
  // in rank order, on every rank.
  virtual torch::Tensor allgather_rows(const torch::Tensor& local) = 0;
  // Root's bytes, on every rank.
  virtual std::string broadcast_bytes(const std::string& bytes, int root = 0) = 0;
  // Every rank's bytes, by rank.
  virtual std::vector<std::string> allgather_bytes(const std::string& bytes) = 0;
  virtual void barrier() = 0;
};

}  // namespace tabby
