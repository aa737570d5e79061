// Where this process sits in a data-parallel job, as torchrun, `tabby train
// --nproc-per-node` and cluster schedulers announce it: RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. Read once, checked,
// and every mistake named with the variable it is in.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace tabby {

struct RankEnv {
  int rank = 0;              // 0 .. world_size-1; rank 0 hosts the rendezvous store and writes the run
  int world_size = 1;        // processes in the job
  int local_rank = 0;        // index among this machine's processes (its GPU on CUDA)
  int local_world_size = 1;  // processes on this machine
  std::string master_addr;   // where rank 0 listens
  uint16_t master_port = 0;
  // torchrun's agent already hosts the store at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects as a client.
  bool agent_hosts_store = false;
  int restart_count = 0;     // TORCHELASTIC_RESTART_COUNT: keys of an earlier attempt are not this one's

  bool is_main() const { return rank == 0; }
};

// The value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads and checks torchrun's variables. RANK, WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT are required; LOCAL_RANK and LOCAL_WORLD_SIZE default to 0 and 1.
// Anything missing or out of range is a UsageError naming the variable.
RankEnv read_rank_env(const EnvLookup& lookup);
RankEnv read_rank_env();  // from this process's environment

// "rank 1 of 2 (local 1 of 2), rendezvous at 127.0.0.1:29500"
std::string describe(const RankEnv& env);

}  // namespace tabby
