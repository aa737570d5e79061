#include "tabby/api/distributed_job.h"

#include <fmt/format.h>

#include <algorithm>

#include "tabby/inference/device.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/threads.h"
#ifdef TABBY_HAVE_C10D
#include "tabby/distributed/c10d_group.h"
#endif

namespace tabby {

namespace {

// On CUDA each rank takes the GPU of its local rank, as torchrun's users expect.
std::string rank_device(const std::string& requested, const RankEnv& env) {
  if (requested == "cpu") return "cpu";
  if (requested.empty() || requested == "auto") {
    return torch::cuda::is_available() ? fmt::format("cuda:{}", env.local_rank) : "cpu";
  }
  if (requested == "cuda") return fmt::format("cuda:{}", env.local_rank);
  return requested;
}

}  // namespace

bool distributed_available() {
#ifdef TABBY_HAVE_C10D
  return true;
#else
  return false;
#endif
}

void JoinedJob::report_failure(const std::string& what) noexcept {
#ifdef TABBY_HAVE_C10D
  if (auto* g = dynamic_cast<C10dGroup*>(group.get())) g->report_failure(what);
#else
  (void)what;
#endif
}

JoinedJob join_distributed_job(const DistributedJobOptions& options) {
#ifndef TABBY_HAVE_C10D
  (void)options;
  throw UsageError("this build of tabby has no distributed training (LibTorch's c10d with Gloo was not found)",
                   "build tabby with libgloo-dev installed (scripts/install-deps.sh)");
#else
  JoinedJob job;
  job.env = read_rank_env();
  if (!job.env.is_main()) {
    log::set_prefix(fmt::format("[rank {}] ", job.env.rank));
    log::set_quiet(true);
    log::set_warnings(false);
  }
  job.threads = options.threads > 0 ? options.threads
                                    : std::max(1, default_thread_count() / std::max(1, job.env.local_world_size));
  job.device = rank_device(options.device, job.env);
  GroupOptions g;
  g.timeout = options.timeout;
  g.gloo_iface = options.gloo_iface;
  g.device = resolve_device(job.device);
  log::infof("joining a data-parallel job as {}", describe(job.env));
  job.group = C10dGroup::join(job.env, g);
  log::infof("all {} ranks joined ({})", job.env.world_size, job.group->backend());
  return job;
#endif
}

}  // namespace tabby
