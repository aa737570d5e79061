// Data-parallel training on LibTorch's c10d (Gloo on the CPU), through the
// real binary on 127.0.0.1: two ranks end with bit-identical weights and
// match one process with the same global batch; a rank that dies, never joins
// or was started differently stops the others with one clear error naming it;
// a killed run resumes to the weights of an uninterrupted one, on the same or
// another number of ranks. Plus the collectives themselves (two ranks as two
// threads of this test) and the loader's sharding.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "tabby/pipeline/rows_file.h"
#include "support/training_data.h"
#include "tabby/launch/local_launcher.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/util/fs.h"
#include "tabby/weights/safetensors.h"
#ifdef TABBY_HAVE_C10D
#include "tabby/distributed/c10d_group.h"
#include "tabby/distributed/shard.h"
#endif

namespace tabby {
namespace {

using testing::CommandResult;
using testing::run_tabby;
using testing::scratch_dir;
using testing::describe;
using testing::expect_same_tensors;
using testing::read_json;
namespace fs = std::filesystem;

#define REQUIRE_DISTRIBUTED()                                                              \
  do {                                                                                     \
    if (!kHaveDistributed) GTEST_SKIP() << "this build has no c10d/Gloo (libgloo-dev)"; \
  } while (0)

#ifdef TABBY_HAVE_C10D
constexpr bool kHaveDistributed = true;
#else
constexpr bool kHaveDistributed = false;
#endif

// No dropout and no augmentation: nothing random in a step, so two ranks and
// one process compute the same sums, only added in another order.
constexpr const char* kDeterministicModel = R"(name = "tiny-deterministic"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 2
)";

struct Data {
  fs::path train, val, model;
};

Data make_data(const fs::path& dir) {
  Data d{dir / "train", dir / "val", dir / "model.toml"};
  testing::write_two_class_folder(d.train, 24, 24, 1);
  testing::write_two_class_folder(d.val, 9, 24, 2);  // 18: the ranks' shares of validation differ by none
  testing::write_bytes(d.model, kDeterministicModel);
  return d;
}

std::vector<std::string> train_args(const Data& d, const fs::path& out, int epochs, int batch) {
  return {"train",      "--data", d.train.string(), "--val", d.val.string(), "--model", d.model.string(),
          "--epochs",   std::to_string(epochs),     "--image-size", "16",   "--batch-size", std::to_string(batch),
          "--seed",     "7",     "--lr", "0.01",    "--out",  out.string(), "--no-report",
          "--dist-timeout", "30"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::vector<std::string> without_dist_flags(std::vector<std::string> args) {
  auto it = std::find(args.begin(), args.end(), "--dist-timeout");
  args.erase(it, it + 2);
  return args;
}

std::vector<float> floats_of(const RawTensor& t) {
  std::vector<float> v(t.data.size() / sizeof(float));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

// Largest absolute difference between two weights files' tensors.
double max_difference(const fs::path& a, const fs::path& b) {
  const RawTensorMap ta = read_safetensors(a).tensors, tb = read_safetensors(b).tensors;
  EXPECT_EQ(ta.size(), tb.size());
  double worst = 0;
  for (const auto& [name, t] : ta) {
    const auto it = tb.find(name);
    if (it == tb.end()) {
      ADD_FAILURE() << name << " missing";
      continue;
    }
    if (t.dtype != DType::F32) continue;
    const auto x = floats_of(t), y = floats_of(it->second);
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(x[i] - y[i])));
  }
  return worst;
}

// history.csv as rows of numbers (header dropped).
std::vector<std::vector<double>> history_of(const fs::path& run) {
  std::istringstream in(read_file(run / "history.csv"));
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::istringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) {
      try {
        row.push_back(std::stod(cell));
      } catch (const std::exception&) {
        row.push_back(NAN);  // the phase column
      }
    }
    rows.push_back(row);
  }
  return rows;
}

// ---------------------------------------------------------------------------
// The loader and the collectives
// ---------------------------------------------------------------------------

TEST(DistributedLoader, TheRanksBatchesOfAStepAreTheGlobalBatchOfOneProcess) {
  const int64_t n = 23, batch = 3, world = 2;  // 23 rows: the last global batch is short (5 rows)
  auto source = torch::arange(n, torch::kFloat32).view({n, 1});
  auto labels = torch::zeros({n}, torch::kLong);
  BatchLoader one(source, labels, LoaderOptions::training(batch * world, 11, torch::kCPU));
  std::vector<std::unique_ptr<BatchLoader>> ranks;
  for (int r = 0; r < world; ++r) {
    ranks.push_back(std::make_unique<BatchLoader>(
        source, labels, LoaderOptions::training(batch, 11, torch::kCPU).sharded(r, static_cast<int>(world))));
  }
  for (int epoch = 1; epoch <= 3; ++epoch) {
    one.start_epoch(epoch);
    for (auto& l : ranks) l->start_epoch(epoch);
    ASSERT_EQ(ranks[0]->num_batches(), one.num_batches());
    while (auto global = one.next()) {
      std::vector<torch::Tensor> parts;
      for (auto& l : ranks) {
        auto b = l->next();
        ASSERT_TRUE(b.has_value());
        EXPECT_EQ(b->global_rows, global->inputs.size(0));
        EXPECT_LE(std::abs(b->inputs.size(0) - global->inputs.size(0) / world), 1);
        parts.push_back(b->inputs);
      }
      EXPECT_TRUE(torch::equal(torch::cat(parts), global->inputs)) << "epoch " << epoch;
    }
    for (auto& l : ranks) EXPECT_FALSE(l->next().has_value());
  }
}

#ifdef TABBY_HAVE_C10D
// Runs `body(group)` as ranks 0 and 1 of a job, in two threads of this process;
// false (and the errors reported) when either failed.
bool with_two_ranks(const std::function<void(Collective&)>& body) {
  const uint16_t port = free_tcp_port("127.0.0.1");
  std::vector<std::string> errors(2);
  auto rank = [&](int r) {
    try {
      RankEnv env;
      env.rank = r;
      env.world_size = 2;
      env.master_addr = "127.0.0.1";
      env.master_port = port;
      GroupOptions o;
      o.timeout = std::chrono::seconds(30);
      auto group = C10dGroup::join(env, o);
      body(*group);
      group->barrier();
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread other(rank, 1);
  rank(0);
  other.join();
  EXPECT_EQ(errors[0], "");
  EXPECT_EQ(errors[1], "");
  return errors[0].empty() && errors[1].empty();
}
#endif

TEST(C10dGroup, CollectivesOfTwoRanks) {
  REQUIRE_DISTRIBUTED();
#ifdef TABBY_HAVE_C10D
  std::vector<torch::Tensor> gathered(2), summed(2), broadcast(2);
  std::vector<std::string> big(2);
  std::vector<std::vector<std::string>> texts(2);
  std::vector<EvalResult> evals(2);
  ASSERT_TRUE(with_two_ranks([&](Collective& g) {
    const int r = g.rank();
    // Rank 0 has three rows, rank 1 none: uneven shares are the normal case.
    const auto rows = r == 0 ? torch::arange(6, torch::kUInt8).view({3, 2}) : torch::empty({0, 2}, torch::kUInt8);
    gathered[r] = g.allgather_rows(rows);
    std::vector<torch::Tensor> t = {torch::full({4}, static_cast<double>(r + 1), torch::kFloat64)};
    g.allreduce_sum(t);
    summed[r] = t[0];
    std::vector<torch::Tensor> b = {torch::full({2, 2}, static_cast<float>(r * 10))};
    g.broadcast(b, 0);
    broadcast[r] = b[0];
    big[r] = g.broadcast_bytes(r == 0 ? std::string(3 << 20, 'x') + "end" : "");
    texts[r] = g.allgather_bytes(r == 0 ? "" : "from rank 1");
    EvalResult e;
    e.count = r == 0 ? 4 : 0;  // an empty share has no per-class counts
    e.loss = 0.5;
    e.accuracy = 0.75;
    if (r == 0) e.predicted_counts = {3, 1, 0};
    evals[r] = sum_evaluations(e, 3, g);
  }));
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE("rank " + std::to_string(r));
    EXPECT_TRUE(torch::equal(gathered[r], torch::arange(6, torch::kUInt8).view({3, 2})));
    EXPECT_TRUE(torch::equal(summed[r], torch::full({4}, 3.0, torch::kFloat64)));
    EXPECT_TRUE(torch::equal(broadcast[r], torch::zeros({2, 2})));
    EXPECT_EQ(big[r].size(), (3u << 20) + 3);
    EXPECT_EQ(big[r].substr(big[r].size() - 3), "end");
    EXPECT_EQ(texts[r], (std::vector<std::string>{"", "from rank 1"}));
    EXPECT_EQ(evals[r].count, 4);
    EXPECT_DOUBLE_EQ(evals[r].loss, 0.5);
    EXPECT_DOUBLE_EQ(evals[r].accuracy, 0.75);
    EXPECT_EQ(evals[r].predicted_counts, (std::vector<int64_t>{3, 1, 0}));
  }
#endif
}

TEST(C10dGroup, ShardsOfRowsAreContiguousAndBalanced) {
  REQUIRE_DISTRIBUTED();
#ifdef TABBY_HAVE_C10D
  for (int64_t n : {0, 1, 5, 18, 23}) {
    for (int world : {1, 2, 3, 4}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        const RowRange s = shard_rows(n, r, world);
        EXPECT_EQ(s.begin, next);
        EXPECT_LE(s.size(), n / world + 1);
        EXPECT_GE(s.size(), n / world);
        next = s.end;
      }
      EXPECT_EQ(next, n);
    }
  }
#endif
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

TEST(DistributedTrain, TwoRanksEndIdenticalAndMatchOneProcessWithTheGlobalBatch) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_two_ranks");
  const Data d = make_data(dir);
  const fs::path two = dir / "two", one = dir / "one";
  CommandResult r = run_tabby(with(train_args(d, two, 4, 4), {"--nproc-per-node", "2", "--save-rank-weights",
                                                             (dir / "ranks").string(), "--json"}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("data parallel on 2 ranks (gloo): 4 images per rank and step, a global batch of 8"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("all 2 ranks hold identical weights"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("[rank 1]"), std::string::npos) << "rank 1 is quiet unless it fails:\n" << r.err;
  // Results once, from rank 0.
  EXPECT_EQ(nlohmann::json::parse(r.out)["run"], two.string());
  expect_same_tensors(dir / "ranks" / "rank0.safetensors", dir / "ranks" / "rank1.safetensors");
  expect_same_tensors(dir / "ranks" / "rank0.safetensors", two / "weights.safetensors");

  const nlohmann::json record = read_json(two / "run.json");
  EXPECT_EQ(record["status"], "finished");
  EXPECT_EQ(record["distributed"]["backend"], "gloo");
  EXPECT_EQ(record["distributed"]["world_size"], 2);
  EXPECT_EQ(record["distributed"]["global_batch"], 8);
  EXPECT_EQ(record["distributed"]["replicas_identical"], true);
  EXPECT_EQ(record["results"]["validation"]["num_images"], 18);

  r = run_tabby(without_dist_flags(train_args(d, one, 4, 8)));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // Same global batches, same data order, same initial weights: only the order
  // of float additions differs (each rank sums its own rows, then the two sums
  // are added), a few units of the last place per step. Over 24 steps that
  // stays far below 1e-5 for weights of order 0.1-1.
  EXPECT_LT(max_difference(one / "weights.safetensors", two / "weights.safetensors"), 1e-5);
  const auto h1 = history_of(one), h2 = history_of(two);
  ASSERT_EQ(h1.size(), 4u);
  ASSERT_EQ(h2.size(), 4u);
  for (size_t e = 0; e < h1.size(); ++e) {
    ASSERT_EQ(h1[e].size(), h2[e].size());
    // loss, accuracy, val_loss, val_accuracy (columns 1-4): global metrics on both sides.
    for (size_t c = 1; c <= 4; ++c) EXPECT_NEAR(h1[e][c], h2[e][c], 1e-5) << "epoch " << e + 1 << " column " << c;
  }

  // A distributed run is a run like any other.
  r = run_tabby({"evaluate", two.string(), "--data", d.val.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NEAR(nlohmann::json::parse(r.out)["accuracy"].get<double>(),
              record["results"]["validation"]["accuracy"].get<double>(), 1e-9);
  r = run_tabby({"predict", two.string(), (d.val / "left" / "img_0.png").string(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  r = run_tabby({"report", two.string()});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

TEST(DistributedTrain, TwoRanksOfAMachineWriteAndMapOneDiskCache) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_disk_cache");
  const Data d = make_data(dir);
  testing::write_bytes(d.train / "left" / "broken.png", "not a png");
  const fs::path cache = dir / "cache";
  CommandResult r = run_tabby(with(train_args(d, dir / "memory", 2, 4),
                                   {"--nproc-per-node", "2", "--cache", "memory", "--cache-dir", cache.string()}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_FALSE(fs::exists(cache));
  r = run_tabby(with(train_args(d, dir / "disk", 2, 4),
                     {"--nproc-per-node", "2", "--cache", "disk", "--cache-dir", cache.string(), "--save-rank-weights",
                      (dir / "ranks").string()}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("wrote the disk cache " + cache.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("broken.png"), std::string::npos) << r.err;
  // One file for the training images and one for validation, written by both
  // ranks (each its share of the files) and mapped by both.
  const auto files = list_rows_files(cache);
  ASSERT_EQ(files.size(), 2u);
  for (const auto& f : files) {
    EXPECT_TRUE(f.finished) << f.path;
    EXPECT_TRUE(f.rows == 48 || f.rows == 18) << f.rows;
  }
  expect_same_tensors(dir / "ranks" / "rank0.safetensors", dir / "ranks" / "rank1.safetensors");
  expect_same_tensors(dir / "memory" / "weights.safetensors", dir / "disk" / "weights.safetensors");
  // The next run on the same files maps it without decoding.
  r = run_tabby(with(train_args(d, dir / "again", 2, 4),
                     {"--nproc-per-node", "2", "--cache", "disk", "--cache-dir", cache.string()}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("reusing the disk cache"), std::string::npos) << r.err;
  expect_same_tensors(dir / "memory" / "weights.safetensors", dir / "again" / "weights.safetensors");
}

TEST(DistributedTrain, AFrozenBackbonesFeaturesAreComputedPerShardAndGathered) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_feature_cache");
  const Data d = make_data(dir);
  auto args = [&](const fs::path& out, int batch) {
    return std::vector<std::string>{"train", "--data", d.train.string(), "--val", d.val.string(), "--model",
                                    "mobilenet_v2", "--weights", "none", "--freeze-backbone", "--image-size", "32",
                                    "--epochs", "2", "--batch-size", std::to_string(batch), "--seed", "3",
                                    "--out", out.string(), "--no-report"};
  };
  CommandResult r = run_tabby(with(args(dir / "two", 4), {"--nproc-per-node", "2"}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("feature cache: the frozen backbone's outputs were computed once"), std::string::npos) << r.err;
  EXPECT_EQ(read_json(dir / "two" / "run.json")["results"]["feature_cache"], true);
  r = run_tabby(with(args(dir / "one", 8), {"--threads", "1"}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // Features computed in batches of other sizes may differ in the last bits
  // (oneDNN picks kernels by batch size); the head then trains on them.
  EXPECT_LT(max_difference(dir / "one" / "weights.safetensors", dir / "two" / "weights.safetensors"), 1e-4);

  // Features over TABBY_FEATURES_IN_MEMORY_MB: the two ranks write their shares
  // into one file under the cache folder that both map, and train as before.
  const fs::path cache = dir / "cache";
  r = run_tabby(with(args(dir / "shared", 4),
                     {"--nproc-per-node", "2", "--cache-dir", cache.string(), "--save-rank-weights",
                      (dir / "ranks").string()}),
                {{"TABBY_FEATURES_IN_MEMORY_MB", "0"}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("are in one file under " + cache.string() + " that the 2 ranks map"), std::string::npos)
      << r.err;
  expect_same_tensors(dir / "ranks" / "rank0.safetensors", dir / "ranks" / "rank1.safetensors");
  expect_same_tensors(dir / "two" / "weights.safetensors", dir / "shared" / "weights.safetensors");
  EXPECT_TRUE(fs::is_empty(cache)) << "the file is removed once mapped";
}

// Kills rank 1 (SIGKILL) once rank 0 has checkpointed a few epochs.
TEST(DistributedTrain, AKilledRankStopsTheOthersNamingItAndTheRunResumesToTheSameWeights) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_kill");
  const Data d = make_data(dir);
  const fs::path whole = dir / "whole", killed = dir / "killed", log = dir / "killed.log";
  const int epochs = 60;
  CommandResult r = run_tabby(with(train_args(d, whole, epochs, 4), {"--nproc-per-node", "2"}));
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  const pid_t launcher = testing::spawn_tabby(with(train_args(d, killed, epochs, 4), {"--nproc-per-node", "2"}), log);
  // Rank 1 is the child of the launcher whose environment says RANK=1.
  auto rank1 = [&]() -> pid_t {
    const CommandResult ps = testing::run_command("pgrep -P " + std::to_string(launcher));
    std::istringstream pids(ps.out);
    std::string pid;
    while (pids >> pid) {
      std::ifstream env("/proc/" + pid + "/environ", std::ios::binary);
      std::string entry;
      while (std::getline(env, entry, '\0')) {
        if (entry == "RANK=1") return static_cast<pid_t>(std::stoi(pid));
      }
    }
    return 0;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int done_epochs = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    try {
      done_epochs = read_json(killed / "run.json").value("epochs_completed", 0);
    } catch (const std::exception&) {
      done_epochs = 0;  // not written yet, or being replaced
    }
    if (done_epochs >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(done_epochs, 3) << read_file(log);
  const pid_t victim = rank1();
  ASSERT_GT(victim, 0) << read_file(log);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(launcher, &status, WNOHANG) == 0) {
    ASSERT_LT(std::chrono::steady_clock::now() - killed_at, std::chrono::seconds(60)) << "still running:\n"
                                                                                      << read_file(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  std::cout << "the job stopped " << seconds << " s after rank 1 was killed\n";
  const std::string text = read_file(log);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << text;
  EXPECT_NE(text.find("rank 1 stopped responding"), std::string::npos) << text;
  EXPECT_NE(text.find("rank 1 was killed by signal 9"), std::string::npos) << text;
  EXPECT_NE(text.find("tabby train --resume " + killed.string() + " --nproc-per-node 2"), std::string::npos) << text;
  const nlohmann::json record = read_json(killed / "run.json");
  EXPECT_EQ(record["status"], "failed");
  EXPECT_NE(record.value("error", "").find("rank 1"), std::string::npos) << record.dump(2);
  EXPECT_TRUE(fs::is_regular_file(killed / "checkpoint.safetensors"));

  r = run_tabby({"train", "--resume", killed.string(), "--nproc-per-node", "2"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("resuming after epoch"), std::string::npos) << r.err;
  expect_same_tensors(whole / "weights.safetensors", killed / "weights.safetensors");
  EXPECT_EQ(read_json(killed / "run.json")["distributed"]["world_sizes"], nlohmann::json({2, 2}));
}

TEST(DistributedTrain, ARunContinuesOnAnotherNumberOfRanksAndSaysSo) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_world_change");
  const Data d = make_data(dir);
  const fs::path run = dir / "run";
  CommandResult r = run_tabby(with(train_args(d, run, 3, 4), {"--nproc-per-node", "2", "--stop-after", "1"}));
  ASSERT_NE(r.exit_code, 0) << describe(r);
  EXPECT_EQ(read_json(run / "run.json")["epochs_completed"], 1);
  r = run_tabby({"train", "--resume", run.string(), "--nproc-per-node", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("this run trained on 2 ranks before and continues on 1: the global batch changes from 8 to 4"),
            std::string::npos)
      << r.err;
  const nlohmann::json record = read_json(run / "run.json");
  EXPECT_EQ(record["status"], "finished");
  EXPECT_EQ(record["distributed"]["world_sizes"], nlohmann::json({2, 1}));
  EXPECT_EQ(record["distributed"]["global_batch"], 4);
  EXPECT_EQ(record["results"]["epochs_completed"], 3);
}

// One rank started by hand, as torchrun would: the environment is the interface.
CommandResult run_rank(int rank, int world, uint16_t port, const std::vector<std::string>& args) {
  std::string line = "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) +
                     " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " +
                     testing::shell_quote(std::getenv("TABBY_BIN"));
  for (const auto& a : args) line += " " + testing::shell_quote(a);
  return testing::run_command(line);
}

TEST(DistributedTrain, ARankThatNeverJoinsIsNamedAfterTheTimeout) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_never_joins");
  const Data d = make_data(dir);
  auto args = without_dist_flags(train_args(d, dir / "run", 1, 4));
  args = with(args, {"--distributed", "--dist-timeout", "2"});
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = run_rank(0, 3, free_tcp_port("127.0.0.1"), args);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("error: ranks 1, 2 never joined the job within 2 s"), std::string::npos) << r.err;

  r = run_rank(1, 2, free_tcp_port("127.0.0.1"), args);
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("[rank 1] error: rank 1 could not reach rank 0's rendezvous at 127.0.0.1:"), std::string::npos)
      << r.err;
}

TEST(DistributedTrain, RanksStartedWithOtherSettingsAreRefused) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_disagree");
  const Data d = make_data(dir);
  const uint16_t port = free_tcp_port("127.0.0.1");
  auto args = with(without_dist_flags(train_args(d, dir / "run", 1, 4)), {"--distributed", "--dist-timeout", "30"});
  auto other = args;
  *(std::find(other.begin(), other.end(), "--seed") + 1) = "8";
  CommandResult r1;
  std::thread second([&] { r1 = run_rank(1, 2, port, other); });
  CommandResult r0 = run_rank(0, 2, port, args);
  second.join();
  EXPECT_NE(r0.exit_code, 0) << describe(r0);
  EXPECT_NE(r1.exit_code, 0) << describe(r1);
  const std::string both = r0.err + r1.err;
  EXPECT_NE(both.find("rank 1 was started with other train options than rank 0"), std::string::npos) << both;
}

TEST(DistributedTrain, MistakesInTheLaunchAreUsageErrors) {
  const fs::path dir = scratch_dir("dist_usage");
  const Data d = make_data(dir);
  const auto base = without_dist_flags(train_args(d, dir / "run", 1, 4));
  struct Case {
    std::vector<std::string> extra;
    std::string words;
  };
  const std::vector<Case> cases = {
      {{"--dist-timeout", "5"}, "--dist-timeout applies only to data-parallel training"},
      {{"--gloo-iface", "eth0"}, "--gloo-iface applies only to data-parallel training"},
      {{"--distributed", "--nproc-per-node", "2"}, "give one of the two"},
      {{"--nproc-per-node", "0"}, "--nproc-per-node must be at least 1"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.words);
    const CommandResult r = run_tabby(with(base, c.extra));
    EXPECT_EQ(r.exit_code, 2) << describe(r);
    EXPECT_NE(r.err.find(c.words), std::string::npos) << r.err;
  }
  if (!kHaveDistributed) return;
  // --distributed outside a launcher: the first missing variable is named.
  const CommandResult r = testing::run_command("env -u RANK -u WORLD_SIZE " +
                                               testing::shell_quote(std::getenv("TABBY_BIN")) + " train --data " +
                                               testing::shell_quote(d.train.string()) + " --model " +
                                               testing::shell_quote(d.model.string()) + " --out " +
                                               testing::shell_quote((dir / "run").string()) + " --distributed");
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("the environment variable WORLD_SIZE is not set"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "run")) << "nothing is written before the job is joined";
}

// Two network namespaces as two machines (tests/distributed/two_hosts.sh);
// skipped where namespaces cannot be made (not root).
TEST(DistributedTrain, TwoMachinesJoinedByANetwork) {
  REQUIRE_DISTRIBUTED();
  const fs::path dir = scratch_dir("dist_two_hosts");
  const Data d = make_data(dir);
  const fs::path script = fs::path(std::getenv("TABBY_SOURCE_DIR")) / "tests" / "distributed" / "two_hosts.sh";
  const CommandResult r = testing::run_command(testing::shell_quote(script.string()) + " " +
                                               testing::shell_quote(std::getenv("TABBY_BIN")) + " " +
                                               testing::shell_quote((dir / "work").string()) + " " +
                                               testing::shell_quote(d.train.string()) + " " +
                                               testing::shell_quote(d.model.string()));
  if (r.exit_code == 77) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("two_hosts: trained across"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tabby
