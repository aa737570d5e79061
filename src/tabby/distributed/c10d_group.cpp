#include "tabby/distributed/c10d_group.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef TABBY_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/torch_compat.h"

namespace tabby {

namespace {

// ProcessGroupGloo and ProcessGroupNCCL derive from ProcessGroup in LibTorch
// 1.13 and from Backend since 2.0; the collectives are the same virtual calls.
#if TABBY_TORCH_AT_LEAST(2, 0)
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

constexpr auto kHeartbeatPeriod = std::chrono::milliseconds(500);
// A rank whose heartbeat has not moved for this long has died or hangs.
constexpr auto kSilenceMeansGone = std::chrono::milliseconds(2500);

std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string from_bytes(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string first_line(const std::string& s) {
  const auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}


std::string rank_list(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size(); ++i) out += (i ? ", " : "") + std::to_string(ranks[i]);
  return (ranks.size() == 1 ? "rank " : "ranks ") + out;
}

// The local IPv4 address this machine sends from to reach `host`.
std::string local_address_towards(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) {
    throw UsageError("MASTER_ADDR=" + host + " does not resolve to an IPv4 address",
                     "give rank 0's address (a.b.c.d) or a name this machine resolves");
  }
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  std::string address;
  sockaddr_in local{};
  socklen_t len = sizeof local;
  // connect() on a datagram socket sends nothing: it only picks the route.
  if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    char text[INET_ADDRSTRLEN] = {};
    if (inet_ntop(AF_INET, &local.sin_addr, text, sizeof text) != nullptr) address = text;
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  if (address.empty()) {
    throw Error("no network route from this machine to MASTER_ADDR=" + host,
                "name the interface to use with --gloo-iface (or GLOO_SOCKET_IFNAME)");
  }
  return address;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

}  // namespace

struct C10dGroup::Impl {
  RankEnv env;
  GroupOptions options;
  std::string prefix;  // of this attempt's keys: a launcher's store outlives a restarted job

  std::string joined_key(int rank) const { return prefix + "joined/" + std::to_string(rank); }
  std::string alive_key(int rank) const { return prefix + "alive/" + std::to_string(rank); }
  std::string failed_key(int rank) const { return prefix + "failed/" + std::to_string(rank); }
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> backend;
  bool nccl = false;

  std::thread heartbeat;
  std::mutex heartbeat_mutex;
  std::condition_variable heartbeat_wake;
  bool heartbeat_stop = false;

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(heartbeat_mutex);
      heartbeat_stop = true;
    }
    heartbeat_wake.notify_all();
    if (heartbeat.joinable()) heartbeat.join();
  }

  c10::intrusive_ptr<c10d::Store> connect_store(bool server) const {
    c10d::TCPStoreOptions o;
    o.port = env.master_port;
    o.isServer = server;
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = false;
    o.timeout = options.timeout;
#if TABBY_TORCH_AT_LEAST(2, 2)
    // LibTorch 2.4 made the libuv server the default, which Debian's LibTorch is
    // built without; the classic one is in every build.
    o.useLibUV = false;
#endif
    return c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  }

  // Every half second, a counter of this rank's moves in the store: the others
  // read it to tell a dead or hung rank from a slow one. Its own connection, so
  // it never waits behind a long store operation of the training thread.
  void start_heartbeat() {
    auto own = connect_store(false);
    heartbeat = std::thread([this, own] {
      std::unique_lock<std::mutex> lock(heartbeat_mutex);
      while (!heartbeat_stop) {
        try {
          own->add(alive_key(env.rank), 1);
        } catch (const std::exception&) {
          return;  // the store is gone: rank 0 has ended
        }
        heartbeat_wake.wait_for(lock, kHeartbeatPeriod, [&] { return heartbeat_stop; });
      }
    });
  }

  void wait_for_everyone() {
    store->set(joined_key(env.rank), to_bytes(host_name()));
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::vector<std::string> keys;
    for (int r = 0; r < env.world_size; ++r) keys.push_back(joined_key(r));
    while (!store->check(keys)) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::vector<int> missing;
        for (int r = 0; r < env.world_size; ++r) {
          if (!store->check({joined_key(r)})) missing.push_back(r);
        }
        throw Error(fmt::format("{} never joined the job within {} s", rank_list(missing),
                                std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count()),
                    "start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE (or a longer --dist-timeout)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void create_backend() {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix + (options.device.is_cuda() ? "nccl" : "gloo"), store);
    if (options.device.is_cuda()) {
#ifdef TABBY_HAVE_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options.timeout;
      backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, o);
      nccl = true;
      return;
#else
      throw Error("this build of tabby has no NCCL for distributed training on CUDA",
                  "train with --device cpu (Gloo), or build against a CUDA LibTorch with NCCL");
#endif
    }
    auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
    std::string iface = options.gloo_iface;
    if (iface.empty()) {
      if (const char* v = std::getenv("GLOO_SOCKET_IFNAME")) iface = v;
    }
    if (!iface.empty()) {
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    } else {
      o->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(local_address_towards(env.master_addr, env.master_port)));
    }
    backend = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, o);
  }

  // Why a collective failed, as far as the store can tell: a rank that said
  // why it stopped, a rank whose heartbeat stopped, or rank 0 itself gone.
  std::string diagnose(const std::string& failure) {
    try {
      auto said = [&]() -> std::string {
        for (int r = 0; r < env.world_size; ++r) {
          if (r != env.rank && store->check({failed_key(r)})) {
            return fmt::format("rank {} stopped: {}", r, from_bytes(store->get(failed_key(r))));
          }
        }
        return {};
      };
      if (auto s = said(); !s.empty()) return s;
      std::vector<int64_t> before(env.world_size), after(env.world_size);
      for (int r = 0; r < env.world_size; ++r) before[r] = store->add(alive_key(r), 0);
      std::this_thread::sleep_for(kSilenceMeansGone);
      if (auto s = said(); !s.empty()) return s;
      std::vector<int> silent;
      for (int r = 0; r < env.world_size; ++r) {
        after[r] = store->add(alive_key(r), 0);
        if (r != env.rank && after[r] == before[r]) silent.push_back(r);
      }
      if (!silent.empty()) {
        return rank_list(silent) + (silent.size() == 1 ? " stopped" : " stopped") +
               " responding (its process died or hangs)";
      }
    } catch (const std::exception&) {
      if (env.rank != 0) {
        return fmt::format("rank 0 stopped (its rendezvous store at {}:{} is gone)", env.master_addr, env.master_port);
      }
    }
    return "a collective operation failed: " + first_line(failure);
  }

  template <typename F>
  auto guarded(const char* operation, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(fmt::format("distributed training stopped in {} on rank {}: {}", operation, env.rank,
                              diagnose(e.what())),
                  "the last checkpoint is kept: when every rank can run again, continue with "
                  "tabby train --resume RUN (with the same launcher)");
    }
  }

  torch::Tensor on_backend(const torch::Tensor& t) const {
    return nccl ? t.to(options.device).contiguous() : t.to(torch::kCPU).contiguous();
  }

  void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
    for (auto& w : works) w->wait();
  }

  // Every rank's tensor padded to the longest first dimension, gathered; the counts beside.
  std::pair<std::vector<torch::Tensor>, std::vector<int64_t>> allgather_padded(const torch::Tensor& local) {
    std::vector<torch::Tensor> count_in = {on_backend(torch::tensor({local.size(0)}, torch::kLong))};
    std::vector<std::vector<torch::Tensor>> count_out(1);
    for (int r = 0; r < env.world_size; ++r) count_out[0].push_back(torch::empty_like(count_in[0]));
    backend->allgather(count_out, count_in)->wait();
    std::vector<int64_t> counts;
    for (auto& c : count_out[0]) counts.push_back(c.to(torch::kCPU).item<int64_t>());
    const int64_t longest = *std::max_element(counts.begin(), counts.end());
    auto shape = local.sizes().vec();
    shape[0] = longest;
    auto padded = torch::zeros(shape, local.options().device(torch::kCPU));
    if (local.size(0) > 0) padded.narrow(0, 0, local.size(0)).copy_(local);
    std::vector<torch::Tensor> in = {on_backend(padded)};
    std::vector<std::vector<torch::Tensor>> out(1);
    for (int r = 0; r < env.world_size; ++r) out[0].push_back(torch::empty_like(in[0]));
    backend->allgather(out, in)->wait();
    return {out[0], counts};
  }
};

C10dGroup::C10dGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
C10dGroup::~C10dGroup() = default;

std::unique_ptr<C10dGroup> C10dGroup::join(const RankEnv& env, const GroupOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->options = options;
  impl->prefix = "tabby/" + std::to_string(env.restart_count) + "/";
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count();
  try {
    impl->store = impl->connect_store(env.rank == 0 && !env.agent_hosts_store);
  } catch (const std::exception& e) {
    if (env.rank == 0 && !env.agent_hosts_store) {
      throw Error(fmt::format("rank 0 cannot host the rendezvous on port {}: {}", env.master_port, first_line(e.what())),
                  "choose a free MASTER_PORT");
    }
    throw Error(fmt::format("rank {} could not reach rank 0's rendezvous at {}:{} within {} s: {}", env.rank,
                            env.master_addr, env.master_port, seconds, first_line(e.what())),
                "start rank 0 too, and check MASTER_ADDR, MASTER_PORT and the firewall between the machines");
  }
  try {
    impl->wait_for_everyone();
    impl->start_heartbeat();
    impl->create_backend();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("rank {} could not connect to the other ranks: {}", env.rank, first_line(e.what())),
                "check that every rank reaches the others (name the network interface with --gloo-iface)");
  }
  return std::unique_ptr<C10dGroup>(new C10dGroup(std::move(impl)));
}

int C10dGroup::rank() const { return impl_->env.rank; }
int C10dGroup::world_size() const { return impl_->env.world_size; }
std::string C10dGroup::backend() const { return impl_->nccl ? "nccl" : "gloo"; }

void C10dGroup::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  impl_->guarded("a broadcast", [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::vector<std::vector<torch::Tensor>> moved;
    for (auto& t : tensors) {
      moved.push_back({impl_->on_backend(t)});
      c10d::BroadcastOptions o;
      o.rootRank = root;
      works.push_back(impl_->backend->broadcast(moved.back(), o));
    }
    impl_->wait_all(works);
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!moved[i][0].is_same(tensors[i])) tensors[i].copy_(moved[i][0]);
    }
  });
}

void C10dGroup::allreduce_sum(std::vector<torch::Tensor>& tensors) {
  impl_->guarded("an all-reduce", [&] {
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    std::vector<std::vector<torch::Tensor>> moved;
    moved.reserve(tensors.size());
    for (auto& t : tensors) {
      moved.push_back({impl_->on_backend(t)});
      works.push_back(impl_->backend->allreduce(moved.back()));
    }
    impl_->wait_all(works);
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!moved[i][0].is_same(tensors[i])) tensors[i].copy_(moved[i][0]);
    }
  });
}

torch::Tensor C10dGroup::allgather_rows(const torch::Tensor& local) {
  return impl_->guarded("an all-gather", [&] {
    auto [parts, counts] = impl_->allgather_padded(local);
    std::vector<torch::Tensor> rows;
    for (size_t r = 0; r < parts.size(); ++r) rows.push_back(parts[r].narrow(0, 0, counts[r]).to(local.device()));
    return torch::cat(rows);
  });
}

std::string C10dGroup::broadcast_bytes(const std::string& bytes, int root) {
  return impl_->guarded("a broadcast", [&] {
    auto size = impl_->on_backend(torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong));
    std::vector<torch::Tensor> s = {size};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->backend->broadcast(s, o)->wait();
    const int64_t n = s[0].to(torch::kCPU).item<int64_t>();
    auto data = torch::empty({n}, torch::kUInt8);
    if (rank() == root && n > 0) std::memcpy(data.data_ptr<uint8_t>(), bytes.data(), static_cast<size_t>(n));
    if (n == 0) return std::string();
    std::vector<torch::Tensor> d = {impl_->on_backend(data)};
    impl_->backend->broadcast(d, o)->wait();
    auto host = d[0].to(torch::kCPU).contiguous();
    return std::string(reinterpret_cast<const char*>(host.data_ptr<uint8_t>()), static_cast<size_t>(n));
  });
}

std::vector<std::string> C10dGroup::allgather_bytes(const std::string& bytes) {
  return impl_->guarded("an all-gather", [&] {
    auto local = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
    if (!bytes.empty()) std::memcpy(local.data_ptr<uint8_t>(), bytes.data(), bytes.size());
    auto [parts, counts] = impl_->allgather_padded(local);
    std::vector<std::string> out;
    for (size_t r = 0; r < parts.size(); ++r) {
      auto host = parts[r].to(torch::kCPU).contiguous();
      out.emplace_back(reinterpret_cast<const char*>(host.data_ptr<uint8_t>()), static_cast<size_t>(counts[r]));
    }
    return out;
  });
}

void C10dGroup::barrier() {
  impl_->guarded("a barrier", [&] {
    // An all-reduce of one number: Gloo's barrier and NCCL's differ in what they wait for.
    std::vector<torch::Tensor> t = {impl_->on_backend(torch::zeros({1}))};
    impl_->backend->allreduce(t)->wait();
  });
}

void C10dGroup::report_failure(const std::string& what) noexcept {
  try {
    impl_->store->set(impl_->failed_key(impl_->env.rank), to_bytes(first_line(what)));
  } catch (...) {
    // The store may be what failed; the others will find this rank silent instead.
  }
}

bool nccl_available() {
#ifdef TABBY_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

}  // namespace tabby
