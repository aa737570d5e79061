// The launch side of data-parallel training, without LibTorch: reading
// torchrun's variables, the command each local rank runs, and the launcher
// itself on small shell programs (exit codes, signals, stopping the others).
#include <gtest/gtest.h>

#include <chrono>
#include <map>

#include "support/test_support.h"
#include "tabby/launch/local_launcher.h"
#include "tabby/launch/rank_env.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const std::map<std::string, std::string> kTorchrun = {{"RANK", "3"},        {"WORLD_SIZE", "4"},
                                                      {"LOCAL_RANK", "1"},  {"LOCAL_WORLD_SIZE", "2"},
                                                      {"MASTER_ADDR", "10.0.0.5"}, {"MASTER_PORT", "29500"}};

TEST(RankEnv, ReadsTorchrunsVariables) {
  const RankEnv env = read_rank_env(env_of(kTorchrun));
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "10.0.0.5");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_FALSE(env.is_main());
  EXPECT_EQ(describe(env), "rank 3 of 4 (local 1 of 2), rendezvous at 10.0.0.5:29500");
}

TEST(RankEnv, LocalVariablesDefaultToOneProcessPerMachine) {
  auto vars = kTorchrun;
  vars.erase("LOCAL_RANK");
  vars.erase("LOCAL_WORLD_SIZE");
  const RankEnv env = read_rank_env(env_of(vars));
  EXPECT_EQ(env.local_rank, 0);
  EXPECT_EQ(env.local_world_size, 1);
}

TEST(RankEnv, UnderTorchrunsAgentEveryRankIsAClientOfItsStore) {
  EXPECT_FALSE(read_rank_env(env_of(kTorchrun)).agent_hosts_store);
  auto vars = kTorchrun;
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  vars["TORCHELASTIC_RESTART_COUNT"] = "2";
  const RankEnv env = read_rank_env(env_of(vars));
  EXPECT_TRUE(env.agent_hosts_store);
  EXPECT_EQ(env.restart_count, 2);
}

TEST(RankEnv, EveryMistakeNamesItsVariable) {
  struct Case {
    std::string name, value, words;
  };
  const std::vector<Case> cases = {
      {"RANK", "", "RANK is not set"},
      {"WORLD_SIZE", "", "WORLD_SIZE is not set"},
      {"MASTER_ADDR", "", "MASTER_ADDR is not set"},
      {"MASTER_PORT", "", "MASTER_PORT is not set"},
      {"RANK", "4", "RANK=4 is not a whole number from 0 to 3"},
      {"RANK", "-1", "RANK=-1"},
      {"WORLD_SIZE", "two", "WORLD_SIZE=two"},
      {"WORLD_SIZE", "0", "WORLD_SIZE=0"},
      {"MASTER_PORT", "70000", "MASTER_PORT=70000"},
      {"MASTER_PORT", "29500x", "MASTER_PORT=29500x"},
      {"LOCAL_RANK", "2", "LOCAL_RANK=2 is not a whole number from 0 to 1"},
      {"LOCAL_WORLD_SIZE", "5", "LOCAL_WORLD_SIZE=5"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + "=" + c.value);
    auto vars = kTorchrun;
    if (c.value.empty()) {
      vars.erase(c.name);
    } else {
      vars[c.name] = c.value;
    }
    try {
      read_rank_env(env_of(vars));
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(c.words), std::string::npos) << e.what();
      EXPECT_NE(e.hint().find("--nproc-per-node"), std::string::npos);
    }
  }
}

TEST(RankCommand, SwapsTheLauncherFlagForDistributedAndSharesTheCores) {
  EXPECT_EQ(rank_command({"tabby", "train", "--data", "d", "--nproc-per-node", "2", "--epochs", "3"}, "/bin/tabby", 4),
            (std::vector<std::string>{"/bin/tabby", "train", "--data", "d", "--epochs", "3", "--distributed",
                                      "--threads", "4"}));
  EXPECT_EQ(rank_command({"tabby", "train", "--nproc-per-node=2", "--threads", "1"}, "/bin/tabby", 4),
            (std::vector<std::string>{"/bin/tabby", "train", "--threads", "1", "--distributed"}));
  EXPECT_EQ(rank_command({"tabby", "train", "--threads=3", "--nproc-per-node", "8"}, "/bin/tabby", 1),
            (std::vector<std::string>{"/bin/tabby", "train", "--threads=3", "--distributed"}));
}

// Ranks as shell programs: each sees its own variables.
LaunchResult launch_shell(const std::string& script, int nproc, std::chrono::milliseconds grace) {
  LocalLaunchOptions o;
  o.command = {"/bin/sh", "-c", script};
  o.nproc = nproc;
  o.grace = grace;
  return launch_local_ranks(o);
}

TEST(LocalLauncher, EveryRankGetsItsVariablesAndAllSucceed) {
  const auto dir = testing::scratch_dir("launcher_vars");
  const std::string script = "echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT\" > " +
                             testing::shell_quote(dir.string()) + "/rank$RANK";
  const LaunchResult r = launch_shell(script, 3, std::chrono::seconds(5));
  EXPECT_EQ(r.first_failed, -1);
  EXPECT_EQ(r.exit_code(), 0);
  std::string port;
  for (int rank = 0; rank < 3; ++rank) {
    const auto text = testing::run_command("cat " + testing::shell_quote((dir / ("rank" + std::to_string(rank))).string())).out;
    const std::string expected_start = std::to_string(rank) + " 3 " + std::to_string(rank) + " 3 127.0.0.1 ";
    EXPECT_EQ(text.rfind(expected_start, 0), 0u) << text;
    const std::string this_port = text.substr(expected_start.size());
    if (rank == 0) port = this_port;
    EXPECT_EQ(this_port, port) << "every rank meets at one port";
  }
}

TEST(LocalLauncher, AFailedRankIsNamedAndTheOthersStopAfterTheGracePeriod) {
  // Rank 1 fails at once; rank 0 would run for a minute and is stopped.
  const auto start = std::chrono::steady_clock::now();
  const LaunchResult r = launch_shell("if [ $RANK = 1 ]; then exit 3; fi; exec sleep 60", 2, std::chrono::milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(r.first_failed, 1);
  EXPECT_EQ(r.exit_code(), 3);
  EXPECT_EQ(r.ranks[1].describe(), "rank 1 exited with status 3");
  EXPECT_EQ(r.ranks[0].signal, SIGTERM);
  EXPECT_EQ(r.ranks[0].describe(), "rank 0 was killed by signal 15 (Terminated)");
}

TEST(LocalLauncher, ARankKilledByASignalGivesTheShellsExitCode) {
  const LaunchResult r = launch_shell("if [ $RANK = 0 ]; then kill -9 $$; fi", 2, std::chrono::seconds(5));
  EXPECT_EQ(r.first_failed, 0);
  EXPECT_EQ(r.ranks[0].signal, 9);
  EXPECT_EQ(r.exit_code(), 137);
  EXPECT_TRUE(r.ranks[1].ok());
}

TEST(LocalLauncher, BadCountsAreRefused) {
  EXPECT_THROW(launch_shell("true", 0, std::chrono::seconds(1)), UsageError);
}

}  // namespace
}  // namespace tabby
