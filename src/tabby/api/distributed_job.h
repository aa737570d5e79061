// A process joining a data-parallel training job (`tabby train --distributed`,
// one rank of torchrun, a scheduler or `--nproc-per-node`): where it sits
// (torchrun's variables), the process group, and the per-rank defaults, so a
// TrainJob only needs the group.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tabby/distributed/collective.h"
#include "tabby/launch/rank_env.h"

namespace tabby {

struct DistributedJobOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // joining, and each collective
  std::string gloo_iface;  // --gloo-iface
  std::string device;      // --device: auto, cpu, cuda (the rank's own GPU: cuda:LOCAL_RANK)
  int threads = 0;         // --threads; 0: this machine's cores shared by its ranks
};

struct JoinedJob {
  RankEnv env;
  std::unique_ptr<Collective> group;
  std::string device;  // for the TrainJob
  int threads = 0;

  // Tells the other ranks why this one stops (they name it in their errors).
  void report_failure(const std::string& what) noexcept;
};

// Reads the environment, sets this rank's log prefix ("[rank N] ", quiet but
// for warnings and errors on ranks other than 0) and joins the group.
// tabby::Error when the rendezvous fails or this build lacks distributed support.
JoinedJob join_distributed_job(const DistributedJobOptions& options);

// Whether this build has distributed training (LibTorch's c10d with Gloo).
bool distributed_available();

}  // namespace tabby
