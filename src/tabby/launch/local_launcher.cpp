#include "tabby/launch/local_launcher.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "tabby/util/error.h"
#include "tabby/util/log.h"

extern char** environ;

namespace tabby {

namespace {

// The children, for the signal handler that passes SIGINT/SIGTERM on.
constexpr int kMaxRanks = 1024;
std::atomic<pid_t> g_children[kMaxRanks];
std::atomic<int> g_child_count{0};

void forward_signal(int sig) {
  const int n = g_child_count.load();
  for (int i = 0; i < n; ++i) {
    const pid_t pid = g_children[i].load();
    if (pid > 0) kill(pid, sig);
  }
}

// The environment of one rank: ours, with torchrun's variables replaced.
std::vector<std::string> rank_environment(const LocalLaunchOptions& o, int rank, uint16_t port) {
  const std::vector<std::pair<std::string, std::string>> set = {
      {"RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(o.nproc)},
      {"LOCAL_RANK", std::to_string(rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
      {"GROUP_RANK", "0"},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(port)},
  };
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& [k, v] : set) replaced = replaced || k == name;
    if (!replaced) env.push_back(entry);
  }
  for (const auto& [k, v] : set) env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (auto& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

pid_t start_rank(const LocalLaunchOptions& o, int rank, uint16_t port) {
  // Everything the child needs is built before fork: after it, only exec.
  std::vector<std::string> argv = o.command;
  std::vector<std::string> env = rank_environment(o, rank, port);
  std::vector<char*> argv_p = pointers(argv), env_p = pointers(env);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("cannot start rank ") + std::to_string(rank) + ": " + std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the launcher died before the line above
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execve(argv_p[0], argv_p.data(), env_p.data());
    const char msg[] = "error: cannot run the rank's program\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  return pid;
}

RankExit exit_of(int rank, int status) {
  RankExit e;
  e.rank = rank;
  if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  return e;
}

class RankSet {
 public:
  explicit RankSet(std::vector<pid_t> pids) : pids_(std::move(pids)), exits_(pids_.size()), done_(pids_.size()) {}

  bool all_done() const { return finished_ == pids_.size(); }
  // Reaps one rank that has ended (waiting for it when `block`); false when none did.
  bool reap(bool block) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
    if (pid <= 0) return false;
    for (size_t r = 0; r < pids_.size(); ++r) {
      if (pids_[r] != pid || done_[r]) continue;
      done_[r] = true;
      ++finished_;
      g_children[r].store(0);
      exits_[r] = exit_of(static_cast<int>(r), status);
      if (!exits_[r].ok() && first_failed_ < 0) first_failed_ = static_cast<int>(r);
    }
    return true;
  }
  void signal_running(int sig) const {
    for (size_t r = 0; r < pids_.size(); ++r) {
      if (!done_[r]) kill(pids_[r], sig);
    }
  }
  int first_failed() const { return first_failed_; }
  const std::vector<RankExit>& exits() const { return exits_; }

 private:
  std::vector<pid_t> pids_;
  std::vector<RankExit> exits_;
  std::vector<bool> done_;
  size_t finished_ = 0;
  int first_failed_ = -1;
};

// Reaps until every rank ended or `deadline` passed.
void reap_until(RankSet& ranks, std::chrono::steady_clock::time_point deadline) {
  while (!ranks.all_done() && std::chrono::steady_clock::now() < deadline) {
    if (!ranks.reap(false)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::string RankExit::describe() const {
  if (signal != 0) return fmt::format("rank {} was killed by signal {} ({})", rank, signal, strsignal(signal));
  return fmt::format("rank {} exited with status {}", rank, exit_code);
}

int LaunchResult::exit_code() const {
  if (first_failed < 0) return 0;
  const RankExit& e = ranks.at(static_cast<size_t>(first_failed));
  return e.signal != 0 ? 128 + e.signal : e.exit_code;
}

std::vector<std::string> rank_command(const std::vector<std::string>& argv, const std::string& program,
                                      int threads_per_rank) {
  std::vector<std::string> out = {program};
  bool threads_given = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--nproc-per-node") {
      ++i;  // and its value
      continue;
    }
    if (a.rfind("--nproc-per-node=", 0) == 0 || a == "--distributed") continue;
    if (a == "--threads" || a.rfind("--threads=", 0) == 0) threads_given = true;
    out.push_back(a);
  }
  out.push_back("--distributed");
  if (!threads_given && threads_per_rank > 0) {
    out.push_back("--threads");
    out.push_back(std::to_string(threads_per_rank));
  }
  return out;
}

std::string own_executable() {
  std::vector<char> buf(4096);
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw Error(std::string("cannot find this program's executable: ") + std::strerror(errno));
  return std::string(buf.data(), static_cast<size_t>(n));
}

uint16_t free_tcp_port(const std::string& address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  if (inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
    close(fd);
    throw UsageError("'" + address + "' is not an IPv4 address", "give the rendezvous address as a.b.c.d");
  }
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    close(fd);
    throw Error("cannot find a free port on " + address + ": " + why);
  }
  close(fd);
  return ntohs(a.sin_port);
}

LaunchResult launch_local_ranks(const LocalLaunchOptions& o) {
  if (o.nproc < 1 || o.nproc > kMaxRanks) {
    throw UsageError(fmt::format("--nproc-per-node {} is out of range", o.nproc), "give 1 to 1024 processes");
  }
  if (o.command.empty()) throw Error("no command to launch");
  const uint16_t port = o.master_port != 0 ? o.master_port : free_tcp_port(o.master_addr);
  log::infof("starting {} ranks on this machine (rendezvous at {}:{})", o.nproc, o.master_addr, port);
  struct sigaction forward {}, old_int {}, old_term {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  sigaction(SIGINT, &forward, &old_int);
  sigaction(SIGTERM, &forward, &old_term);
  std::vector<pid_t> pids;
  g_child_count.store(0);
  for (int r = 0; r < o.nproc; ++r) {
    pids.push_back(start_rank(o, r, port));
    g_children[r].store(pids.back());
    g_child_count.store(r + 1);
  }
  RankSet ranks(pids);
  while (!ranks.all_done() && ranks.first_failed() < 0) ranks.reap(true);
  if (!ranks.all_done()) {
    // One failed: the others should notice in their next collective and stop by themselves.
    reap_until(ranks, std::chrono::steady_clock::now() + o.grace);
    if (!ranks.all_done()) {
      log::warnf("ranks still running {} s after rank {} failed: stopping them",
                 std::chrono::duration_cast<std::chrono::seconds>(o.grace).count(), ranks.first_failed());
      ranks.signal_running(SIGTERM);
      reap_until(ranks, std::chrono::steady_clock::now() + std::chrono::seconds(5));
      ranks.signal_running(SIGKILL);
      while (!ranks.all_done()) ranks.reap(true);
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  g_child_count.store(0);
  return {ranks.exits(), ranks.first_failed()};
}

}  // namespace tabby
