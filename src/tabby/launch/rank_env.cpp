#include "tabby/launch/rank_env.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>

#include "tabby/util/error.h"

namespace tabby {

namespace {

constexpr const char* kLaunchHint =
    "start every rank with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (as torchrun does), "
    "or let tabby start them on this machine: tabby train ... --nproc-per-node N";

long parse_integer(const std::string& name, const std::string& text, long low, long high) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || end == nullptr || *end != '\0' || errno != 0 || v < low || v > high) {
    throw UsageError(fmt::format("{}={} is not a whole number from {} to {}", name, text, low, high), kLaunchHint);
  }
  return v;
}

std::string required(const EnvLookup& lookup, const std::string& name) {
  const auto v = lookup(name);
  if (!v || v->empty()) throw UsageError("--distributed: the environment variable " + name + " is not set", kLaunchHint);
  return *v;
}

}  // namespace

RankEnv read_rank_env(const EnvLookup& lookup) {
  RankEnv env;
  env.world_size = static_cast<int>(parse_integer("WORLD_SIZE", required(lookup, "WORLD_SIZE"), 1, 1 << 20));
  env.rank = static_cast<int>(parse_integer("RANK", required(lookup, "RANK"), 0, env.world_size - 1));
  env.master_addr = required(lookup, "MASTER_ADDR");
  env.master_port = static_cast<uint16_t>(parse_integer("MASTER_PORT", required(lookup, "MASTER_PORT"), 1, 65535));
  if (const auto v = lookup("LOCAL_WORLD_SIZE"); v && !v->empty()) {
    env.local_world_size = static_cast<int>(parse_integer("LOCAL_WORLD_SIZE", *v, 1, env.world_size));
  }
  if (const auto v = lookup("LOCAL_RANK"); v && !v->empty()) {
    env.local_rank = static_cast<int>(parse_integer("LOCAL_RANK", *v, 0, env.local_world_size - 1));
  }
  if (const auto v = lookup("TORCHELASTIC_USE_AGENT_STORE")) env.agent_hosts_store = *v == "True" || *v == "1";
  if (const auto v = lookup("TORCHELASTIC_RESTART_COUNT"); v && !v->empty()) {
    env.restart_count = static_cast<int>(parse_integer("TORCHELASTIC_RESTART_COUNT", *v, 0, 1 << 30));
  }
  return env;
}

RankEnv read_rank_env() {
  return read_rank_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

std::string describe(const RankEnv& env) {
  return fmt::format("rank {} of {} (local {} of {}), rendezvous at {}:{}", env.rank, env.world_size, env.local_rank,
                     env.local_world_size, env.master_addr, env.master_port);
}

}  // namespace tabby
