// `tabby train --nproc-per-node N`: starts N ranks of the same command on this
// machine, as `torchrun --standalone` does, and waits for them. Each rank gets
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT); rank 0 hosts the rendezvous on a free port.
//
// When a rank fails, the others are given `grace` to notice and stop with
// their own message (the collective they wait in fails); any still running
// then are sent SIGTERM, and SIGKILL after a few seconds. SIGINT and SIGTERM
// sent to the launcher reach every rank. Ranks die with the launcher.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tabby {

struct LocalLaunchOptions {
  std::vector<std::string> command;  // one rank's argv; command[0] is the program
  int nproc = 1;
  std::string master_addr = "127.0.0.1";
  uint16_t master_port = 0;  // 0: a free port of this machine
  std::chrono::milliseconds grace{std::chrono::seconds(60)};
};

// How one rank ended.
struct RankExit {
  int rank = 0;
  int exit_code = 0;  // when it exited
  int signal = 0;     // when a signal ended it
  bool ok() const { return exit_code == 0 && signal == 0; }
  std::string describe() const;  // "rank 1 was killed by signal 9 (Killed)"
};

struct LaunchResult {
  std::vector<RankExit> ranks;  // by rank
  int first_failed = -1;        // the rank that failed first; -1: none
  int exit_code() const;        // 0, the first failure's code, or 128 + its signal
};

// Runs the ranks to the end. Throws tabby::Error when they cannot be started.
LaunchResult launch_local_ranks(const LocalLaunchOptions& options);

// One rank's command from the launcher's: `program` in place of argv[0],
// `--nproc-per-node N` (or =N) removed, `--distributed` added, and
// `--threads K` added when no --threads was given (the cores shared out).
std::vector<std::string> rank_command(const std::vector<std::string>& argv, const std::string& program,
                                      int threads_per_rank);

// This program's own executable (/proc/self/exe), for starting it again.
std::string own_executable();

// A TCP port nothing listens on now, on `address`.
uint16_t free_tcp_port(const std::string& address);

}  // namespace tabby
