// A process group on LibTorch's c10d, the engine PyTorch's own distributed
// training runs on: a TCPStore hosted by rank 0 for the rendezvous, Gloo for
// tensors on the CPU, NCCL for tensors on CUDA (builds that have it).
//
// Joining is bounded: a rank that never arrives is named once the timeout
// passes. A collective that fails (a peer died, hung or gave up) becomes one
// tabby::Error naming the rank: each rank beats a heartbeat counter in the
// store, and a rank that stops on an error leaves its message there first.
//
// Gloo's default device resolves the hostname, which Debian maps to
// 127.0.1.1: other machines would be told to connect to their own loopback.
// The device here is the interface named by --gloo-iface / GLOO_SOCKET_IFNAME,
// else the local address this machine uses to reach MASTER_ADDR.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tabby/launch/rank_env.h"
#include "tabby/distributed/collective.h"

namespace tabby {

struct GroupOptions {
  // Longest wait for the other ranks to join, and for any one collective.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  std::string gloo_iface;              // empty: GLOO_SOCKET_IFNAME, else the route to MASTER_ADDR
  torch::Device device = torch::kCPU;  // CUDA: NCCL
};

class C10dGroup : public Collective {
 public:
  // Joins the job `env` describes. Throws tabby::Error naming the ranks that
  // did not join in time, or saying why the rendezvous cannot be reached.
  static std::unique_ptr<C10dGroup> join(const RankEnv& env, const GroupOptions& options);
  ~C10dGroup() override;

  int rank() const override;
  int world_size() const override;
  std::string backend() const override;
  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0) override;
  void allreduce_sum(std::vector<torch::Tensor>& tensors) override;
  torch::Tensor allgather_rows(const torch::Tensor& local) override;
  std::string broadcast_bytes(const std::string& bytes, int root = 0) override;
  std::vector<std::string> allgather_bytes(const std::string& bytes) override;
  void barrier() override;

  // Leaves `what` where the other ranks look when their collectives fail, so
  // they can say why this rank stopped. Never throws.
  void report_failure(const std::string& what) noexcept;

  struct Impl;

 private:
  explicit C10dGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when this build has NCCL (a CUDA LibTorch built with it).
bool nccl_available();

}  // namespace tabby
