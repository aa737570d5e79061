// End-to-end tests of `tabby train`, `evaluate` and `predict` through the real
// binary: the run folder a training leaves, reproducibility for a seed,
// stopping and resuming (including SIGKILL at random moments) ending with the
// same weights as an uninterrupted run, divergence detection, and a short
// training on a real subset of cats vs dogs that beats the majority baseline.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "support/image_encode.h"
#include "support/training_data.h"
#include "tabby/image/image.h"
#include "tabby/util/fs.h"
#include "tabby/weights/safetensors.h"

namespace tabby {
namespace {

using testing::CommandResult;
using testing::run_tabby;
using testing::scratch_dir;
using testing::describe;
using testing::expect_same_tensors;
using testing::read_json;
namespace fs = std::filesystem;

using testing::write_two_class_folder;

constexpr const char* kTrainCliModel = R"(name = "tiny"
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
type = "Dropout"
rate = 0.25
[[layers]]
type = "Dense"
units = 2
)";

struct TinyData {
  fs::path train, val, model;
};

TinyData make_tiny_data(const fs::path& dir, int per_class = 24) {
  TinyData d{dir / "train", dir / "val", dir / "tiny.toml"};
  write_two_class_folder(d.train, per_class, 24, 1);
  write_two_class_folder(d.val, 8, 24, 2);
  testing::write_bytes(d.model, kTrainCliModel);
  return d;
}

// Two classes of identical gray images: no model can tell them apart, so every
// prediction is one class (a collapse, on purpose).
TinyData make_gray_data(const fs::path& dir) {
  TinyData d = make_tiny_data(dir, 8);
  Image gray(24, 24);
  std::fill(gray.pixels.begin(), gray.pixels.end(), uint8_t{128});
  for (const fs::path& root : {d.train, d.val}) {
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file()) testing::write_bytes(entry.path(), encode_png(gray));
    }
  }
  return d;
}

std::vector<std::string> train_args(const TinyData& d, const fs::path& out, int epochs, int seed = 7) {
  return {"train",    "--data", d.train.string(), "--val",  d.val.string(),  "--model",          d.model.string(),
          "--epochs", std::to_string(epochs),     "--image-size", "16",      "--batch-size",     "8",
          "--seed",   std::to_string(seed),       "--out",  out.string(),    "--threads",        "1",
          "--lr",     "0.01"};
}

// The tensors of a weights file, by name (metadata such as timestamps aside).
RawTensorMap tensors_of(const fs::path& file) { return read_safetensors(file).tensors; }

// A callback's own flags act alone: given without --early-stopping or
// --reduce-lr they switch their callback on, as --patience always did.
TEST(TrainCli, CallbackFlagsSwitchTheirCallbackOn) {
  const fs::path dir = scratch_dir("train_cli_callback_flags");
  const TinyData d = make_tiny_data(dir, 8);
  struct Case {
    std::vector<std::string> flags;
    std::function<void(const nlohmann::json&)> check;
  };
  const std::vector<Case> cases = {
      {{"--min-delta", "0.25"},
       [](const nlohmann::json& t) {
         EXPECT_TRUE(t["early_stopping"]["enabled"].get<bool>());
         EXPECT_DOUBLE_EQ(t["early_stopping"]["min_delta"].get<double>(), 0.25);
         EXPECT_FALSE(t["reduce_lr"]["enabled"].get<bool>());
       }},
      {{"--no-restore-best"},
       [](const nlohmann::json& t) {
         EXPECT_TRUE(t["early_stopping"]["enabled"].get<bool>());
         EXPECT_FALSE(t["early_stopping"]["restore_best_weights"].get<bool>());
       }},
      {{"--min-lr", "0.0001"},
       [](const nlohmann::json& t) {
         EXPECT_TRUE(t["reduce_lr"]["enabled"].get<bool>());
         EXPECT_DOUBLE_EQ(t["reduce_lr"]["min_lr"].get<double>(), 1e-4);
         EXPECT_FALSE(t["early_stopping"]["enabled"].get<bool>());
       }},
      {{},
       [](const nlohmann::json& t) {
         EXPECT_FALSE(t["early_stopping"]["enabled"].get<bool>());
         EXPECT_FALSE(t["reduce_lr"]["enabled"].get<bool>());
       }},
  };
  int n = 0;
  for (const auto& c : cases) {
    const fs::path run = dir / ("run" + std::to_string(n++));
    std::vector<std::string> args = train_args(d, run, 1);
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    args.push_back("--no-report");
    const CommandResult r = run_tabby(args);
    ASSERT_EQ(r.exit_code, 0) << describe(r);
    SCOPED_TRACE(::testing::PrintToString(c.flags));
    c.check(read_json(run / "run.json")["train"]);
  }
  // Every option of the table has its flag in the help, --best-monitor included (the help once named it
  // when it did not exist).
  const CommandResult help = run_tabby({"train", "--help"});
  for (const char* flag : {"--best-monitor", "--schedule", "--label-smoothing", "--ema", "--recipe"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << "\n" << help.out;
  }
}

TEST(TrainCli, RunFolderHoldsEverythingEvaluateAndPredictNeed) {
  const fs::path dir = scratch_dir("train_cli_run_folder");
  const TinyData d = make_tiny_data(dir);
  const fs::path run = dir / "run";
  CommandResult r = run_tabby(train_args(d, run, 4));
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  // Keras-like progress lines on stderr, one per epoch.
  EXPECT_NE(r.err.find("epoch 1/4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("epoch 4/4"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ms/step - accuracy: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("val_accuracy: "), std::string::npos) << r.err;

  for (const char* f : {"model.toml", "run.json", "classes.txt", "weights.safetensors", "history.csv",
                        "checkpoint.safetensors"}) {
    EXPECT_TRUE(fs::is_regular_file(run / f)) << f;
  }
  EXPECT_EQ(read_file(run / "classes.txt"), "left\nright\n");

  std::istringstream history(read_file(run / "history.csv"));
  std::string header, line;
  std::getline(history, header);
  for (const char* column : {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column << " missing from " << header;
  }
  int rows = 0;
  while (std::getline(history, line)) rows += line.empty() ? 0 : 1;
  EXPECT_EQ(rows, 4);

  const nlohmann::json run_json = read_json(run / "run.json");
  EXPECT_EQ(run_json.value("status", ""), "finished");

  // evaluate: the separable classes are learnt; the baseline is printed beside.
  r = run_tabby({"evaluate", run.string(), "--data", d.val.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json ev = nlohmann::json::parse(r.out);
  EXPECT_EQ(ev.at("num_images").get<int>(), 16);
  EXPECT_GE(ev.at("accuracy").get<double>(), 0.9) << r.out;
  EXPECT_GT(ev.at("loss").get<double>(), 0.0);
  EXPECT_NEAR(ev.at("baseline_accuracy").get<double>(), 0.5, 1e-9) << r.out;

  r = run_tabby({"evaluate", run.string(), "--data", d.val.string()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("accuracy"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("baseline"), std::string::npos) << r.out;

  // predict: one entry per image, with a label among the classes; top-k.
  r = run_tabby({"predict", run.string(), (d.val / "left").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json preds = nlohmann::json::parse(r.out);
  ASSERT_TRUE(preds.is_array());
  ASSERT_EQ(preds.size(), 8u);
  int left = 0;
  for (const auto& p : preds) {
    const std::string label = p.at("label");
    EXPECT_TRUE(label == "left" || label == "right") << label;
    const double prob = p.at("probability");
    EXPECT_GE(prob, 0.5);
    EXPECT_LE(prob, 1.0);
    EXPECT_NE(p.at("file").get<std::string>().find("img_"), std::string::npos);
    left += label == "left";
  }
  EXPECT_GE(left, 7);

  r = run_tabby({"predict", run.string(), (d.val / "right" / "img_0.png").string(), "--top-k", "2"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("left"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("right"), std::string::npos) << r.out;
}

TEST(TrainCli, TheSameSeedGivesTheSameWeightsAndAnotherSeedDoesNot) {
  const fs::path dir = scratch_dir("train_cli_seed");
  const TinyData d = make_tiny_data(dir);
  for (const auto& [name, seed] : std::vector<std::pair<std::string, int>>{{"a", 7}, {"b", 7}, {"c", 8}}) {
    CommandResult r = run_tabby(train_args(d, dir / name, 2, seed));
    ASSERT_EQ(r.exit_code, 0) << describe(r);
  }
  expect_same_tensors(dir / "a" / "weights.safetensors", dir / "b" / "weights.safetensors");
  const RawTensorMap a = tensors_of(dir / "a" / "weights.safetensors");
  const RawTensorMap c = tensors_of(dir / "c" / "weights.safetensors");
  bool any_difference = false;
  for (const auto& [name, t] : a) any_difference |= t.data != c.at(name).data;
  EXPECT_TRUE(any_difference) << "seed 8 trained the same weights as seed 7";
}

TEST(TrainCli, StoppedThenResumedEndsWithTheUninterruptedWeights) {
  const fs::path dir = scratch_dir("train_cli_resume");
  const TinyData d = make_tiny_data(dir);
  CommandResult r = run_tabby(train_args(d, dir / "whole", 5));
  ASSERT_EQ(r.exit_code, 0) << describe(r);

  std::vector<std::string> args = train_args(d, dir / "parts", 5);
  args.insert(args.end(), {"--stop-after", "2"});
  r = run_tabby(args);
  EXPECT_NE(r.exit_code, 0) << "the test hook stops the run like a crash";
  EXPECT_TRUE(fs::is_regular_file(dir / "parts" / "checkpoint.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "parts" / "weights.safetensors"));

  r = run_tabby({"train", "--resume", (dir / "parts").string(), "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("resuming after epoch 2/5"), std::string::npos) << r.err;
  expect_same_tensors(dir / "whole" / "weights.safetensors", dir / "parts" / "weights.safetensors");
  EXPECT_EQ(read_file(dir / "whole" / "classes.txt"), read_file(dir / "parts" / "classes.txt"));

  // The history of the resumed run has every epoch once, and the same metrics.
  auto metrics_only = [](const std::string& csv) {
    // Drop the "seconds" column (7th), which differs between runs.
    std::istringstream in(csv);
    std::string line, out;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string field;
      for (int i = 0; std::getline(fields, field, ','); ++i) {
        if (i != 6) out += field + ",";
      }
      out += "\n";
    }
    return out;
  };
  EXPECT_EQ(metrics_only(read_file(dir / "whole" / "history.csv")),
            metrics_only(read_file(dir / "parts" / "history.csv")));

  // Resuming a finished run has nothing to do and succeeds (a script may resume
  // until success); it leaves the weights alone and writes a missing report.
  const std::string weights_before = read_file(dir / "parts" / "weights.safetensors");
  fs::remove(dir / "parts" / "report.html");
  r = run_tabby({"train", "--resume", (dir / "parts").string()});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("has already finished (5 epochs): nothing to resume"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::is_regular_file(dir / "parts" / "report.html"));
  EXPECT_EQ(read_file(dir / "parts" / "weights.safetensors"), weights_before);
  EXPECT_EQ(r.err.find("epoch 1/5"), std::string::npos) << "trained again:\n" << r.err;
}

// Killed after the last epoch's checkpoint but before the final weights were
// written (its run.json still says running): resuming trains nothing and ends
// with the trained weights, not the initial ones.
TEST(TrainCli, KilledAfterTheLastCheckpointResumesToTheTrainedWeights) {
  const fs::path dir = scratch_dir("train_cli_last_checkpoint");
  const TinyData d = make_tiny_data(dir);
  const fs::path run = dir / "run";
  CommandResult r = run_tabby(train_args(d, run, 3));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  fs::rename(run / "weights.safetensors", dir / "trained.safetensors");
  fs::remove(run / "report.html");
  nlohmann::json status = read_json(run / "run.json");
  status["status"] = "running";
  status.erase("results");
  testing::write_bytes(run / "run.json", status.dump(1));

  r = run_tabby({"train", "--resume", run.string(), "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("resuming after epoch 3/3"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ms/step"), std::string::npos) << "trained again:\n" << r.err;
  expect_same_tensors(dir / "trained.safetensors", run / "weights.safetensors");
  EXPECT_EQ(read_json(run / "run.json").value("status", ""), "finished");
}

using testing::spawn_tabby;

TEST(TrainCli, KilledAtRandomMomentsAndResumedEndsBitIdentical) {
  const fs::path dir = scratch_dir("train_cli_kill");
  const TinyData d = make_tiny_data(dir, 48);
  // Two wider convolutions at 48x48 make the epochs, not start-up, most of a launch.
  testing::write_bytes(d.model, R"(name = "two-conv"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"
[[layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 2
)");
  auto kill_test_args = [&](const fs::path& out) {
    std::vector<std::string> args = train_args(d, out, 6);
    *(std::find(args.begin(), args.end(), "--image-size") + 1) = "48";
    return args;
  };
  const fs::path whole = dir / "whole", killed = dir / "killed", log = dir / "killed.log";
  const auto whole_start = std::chrono::steady_clock::now();
  CommandResult r = run_tabby(kill_test_args(whole));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto whole_ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - whole_start).count());

  // Kill after random delays spread over the uninterrupted run's length, so kills
  // land in start-up, mid-epoch and during checkpoint writes; resume each time.
  // Should a launch still finish before its delay with fewer than 3 kills (a
  // resumed launch has less to do), the killed run starts over with delays half as long.
  std::mt19937 rng(20261123);
  const std::vector<std::string> first = kill_test_args(killed);
  int kills = 0, launches = 0;
  bool finished = false;
  for (int max_delay_ms = std::max(100, whole_ms * 9 / 10); max_delay_ms >= 50; max_delay_ms /= 2) {
    std::error_code ec;
    fs::remove_all(killed, ec);
    std::uniform_int_distribution<int> delay_ms(std::min(50, max_delay_ms / 2), max_delay_ms);
    kills = launches = 0;
    finished = false;
    while (!finished && launches < 40) {
      const bool started = fs::is_regular_file(killed / "run.json");
      std::vector<std::string> args = first;
      if (started) {
        args = {"train", "--resume", killed.string(), "--threads", "1"};
      } else {
        args.push_back("--overwrite");  // a kill before the run folder was complete
      }
      const pid_t pid = spawn_tabby(args, log);
      ++launches;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(rng));
      int status = 0;
      pid_t done = 0;
      while ((done = waitpid(pid, &status, WNOHANG)) == 0) {
        if (kills < 6 && std::chrono::steady_clock::now() >= deadline) {
          kill(pid, SIGKILL);
          waitpid(pid, &status, 0);
          ++kills;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (done == pid) {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "launch " << launches << " (wait status " << status << "): " << read_file(log);
        finished = true;
      }
    }
    std::cout << "killed " << kills << " times in " << launches << " launches (delays up to " << max_delay_ms
              << " ms)\n";
    if (!finished || kills >= 3) break;
  }
  ASSERT_TRUE(finished) << read_file(log);
  EXPECT_GE(kills, 3) << read_file(log);
  EXPECT_EQ(read_json(killed / "run.json").value("status", ""), "finished");
  expect_same_tensors(whole / "weights.safetensors", killed / "weights.safetensors");
}

TEST(TrainCli, ADivergingLossStopsNamingTheEpochAndStep) {
  const fs::path dir = scratch_dir("train_cli_diverge");
  const TinyData d = make_tiny_data(dir);
  std::vector<std::string> args = train_args(d, dir / "run", 3);
  testing::write_bytes(d.model, R"(name = "unscaled"
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 2
)");
  args.back() = "10";  // --lr
  args.insert(args.end(), {"--optimizer", "sgd"});
  CommandResult r = run_tabby(args);
  EXPECT_NE(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("at epoch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--lr"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
}

// Both classes hold the same image, so every model predicts one class for every
// validation image: fit() says so once, after the second such epoch in a row
// (not after the first, which may recover; not again after the third), with a
// hint, and the run records the epoch it began.
TEST(TrainCli, AModelPredictingOneClassForEveryImageIsReportedOnce) {
  const fs::path dir = scratch_dir("train_cli_collapse");
  const TinyData d = make_gray_data(dir);
  CommandResult r = run_tabby(train_args(d, dir / "run", 3));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const std::string warning = "for all 16 validation images";
  // The warning follows epoch 2's progress line, not epoch 1's.
  EXPECT_LT(r.err.find("epoch 2/3"), r.err.find(warning)) << r.err;
  const size_t first = r.err.find(warning);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(warning, first + 1), std::string::npos) << "warned more than once:\n" << r.err;
  EXPECT_NE(r.err.find("since epoch 1 the model has predicted '"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: this usually means every ReLU has died"), std::string::npos) << r.err;
  const nlohmann::json results = read_json(dir / "run" / "run.json")["results"];
  EXPECT_EQ(results.value("collapsed_at_epoch", 0), 1) << results.dump();
  ASSERT_EQ(results["warnings"].size(), 1u) << results.dump();
  EXPECT_NE(results["warnings"][0].get<std::string>().find(warning), std::string::npos);

  // The report written at the end of training says it beside the metrics too.
  const std::string report = read_file(dir / "run" / "report.html");
  EXPECT_NE(report.find("for all 16 images (accuracy 0.5000"), std::string::npos);

  // evaluate says the same of any data it is given.
  r = run_tabby({"evaluate", (dir / "run").string(), "--data", d.val.string(), "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("warning: the model predicted '"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("' for all 16 images (accuracy 0.5000"), std::string::npos) << r.out;
  r = run_tabby({"evaluate", (dir / "run").string(), "--data", d.val.string(), "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json evaluation = nlohmann::json::parse(r.out);
  ASSERT_TRUE(evaluation["predicts_one_class"].is_string()) << r.out;
  // The class training named.
  const std::string named = "'" + evaluation["predicts_one_class"].get<std::string>() + "'";
  EXPECT_NE(results["warnings"][0].get<std::string>().find(named), std::string::npos) << named;
}

// The collapse detector survives an interruption: stopped between the two epochs
// it needs, the resumed run still warns (naming the epoch the streak began); stopped
// after the warning, the resumed run keeps it in run.json and does not say it again.
TEST(TrainCli, ACollapseWarningSurvivesResume) {
  const fs::path dir = scratch_dir("train_cli_collapse_resume");
  const TinyData d = make_gray_data(dir);
  const std::string warning = "for all 16 validation images";
  for (const int stop_after : {1, 2}) {
    SCOPED_TRACE("stopped after epoch " + std::to_string(stop_after));
    const fs::path run = dir / ("run" + std::to_string(stop_after));
    std::vector<std::string> args = train_args(d, run, 4);
    args.insert(args.end(), {"--stop-after", std::to_string(stop_after)});
    CommandResult first = run_tabby(args);
    ASSERT_NE(first.exit_code, 0) << describe(first);
    CommandResult resumed = run_tabby({"train", "--resume", run.string(), "--threads", "1"});
    ASSERT_EQ(resumed.exit_code, 0) << describe(resumed);
    const bool said_before = first.err.find(warning) != std::string::npos;
    const bool said_after = resumed.err.find(warning) != std::string::npos;
    EXPECT_EQ(said_before, stop_after >= 2) << first.err;
    EXPECT_NE(said_before, said_after) << "said exactly once over both processes:\n"
                                       << first.err << "\n---\n"
                                       << resumed.err;
    if (said_after) EXPECT_NE(resumed.err.find("since epoch 1 the model"), std::string::npos) << resumed.err;
    const nlohmann::json results = read_json(run / "run.json")["results"];
    EXPECT_EQ(results.value("collapsed_at_epoch", 0), 1) << results.dump();
    ASSERT_EQ(results["warnings"].size(), 1u) << results.dump();
    EXPECT_NE(results["warnings"][0].get<std::string>().find(warning), std::string::npos);
  }
}

// A couple of epochs of the tutorial's CNN on a real subset beat the majority
// baseline of the validation slice.
// The two-phase schedule in one command: the head trains on the frozen backbone,
// then the last 2 blocks (features.17 and .18 of MobileNetV2) fine-tune at their
// own learning rate with batch norm in inference mode. Compared with the same
// run stopped after the first phase: earlier blocks are bit-identical, the last
// ones moved, and no batch-norm statistic moved anywhere.
TEST(TrainCli, TwoPhaseFineTuneTrainsOnlyTheLastBlocksAndKeepsBatchNormStatistics) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path weights = shared / "weights" / "mobilenet_v2_imagenet.safetensors";
  if (!fs::is_regular_file(weights)) GTEST_SKIP() << "no " << weights;
  const fs::path dir = scratch_dir("train_cli_fine_tune");
  const TinyData d = make_tiny_data(dir, 8);
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"train", "--data", d.train.string(), "--val", d.val.string(), "--model",
                                    "mobilenet_v2", "--weights", weights.string(), "--freeze-backbone",
                                    "--image-size", "32", "--batch-size", "8", "--epochs", "1", "--threads", "1",
                                    "--out", out.string(), "--no-report", "--json"};
  };
  CommandResult r = run_tabby(args(dir / "head"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> two_phase = args(dir / "both");
  two_phase.insert(two_phase.end(), {"--fine-tune-last", "2", "--fine-tune-epochs", "2", "--fine-tune-lr", "0.003"});
  r = run_tabby(two_phase);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("unfroze the last 2 blocks"), std::string::npos) << r.err;

  const std::string history = read_file(dir / "both" / "history.csv");
  std::vector<std::string> rows;
  std::istringstream in(history);
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 4u) << history;  // header + 1 head epoch + 2 fine-tune epochs
  EXPECT_NE(rows[1].find(",0.001,"), std::string::npos) << rows[1];
  EXPECT_NE(rows[1].find(",train"), std::string::npos) << rows[1];
  EXPECT_NE(rows[2].find(",0.003,"), std::string::npos) << rows[2];
  EXPECT_NE(rows[3].find(",fine-tune"), std::string::npos) << rows[3];

  const nlohmann::json params = read_json(dir / "both" / "run.json")["results"]["params"];
  EXPECT_GT(params.value("trainable_fine_tune", int64_t{0}), params.value("trainable", int64_t{0})) << params.dump();

  const RawTensorMap head_only = tensors_of(dir / "head" / "weights.safetensors");
  const RawTensorMap both = tensors_of(dir / "both" / "weights.safetensors");
  ASSERT_EQ(head_only.size(), both.size());
  auto in_block = [](const std::string& name, int block) {
    return name.find("features." + std::to_string(block) + ".") != std::string::npos;
  };
  int checked_frozen = 0, moved_last = 0, statistics = 0;
  for (const auto& [name, t] : head_only) {
    const bool same = t.data == both.at(name).data;
    if (name.find("running_") != std::string::npos) {
      EXPECT_TRUE(same) << "batch-norm statistic " << name << " moved";
      ++statistics;
    } else if (in_block(name, 0) || in_block(name, 16)) {
      EXPECT_TRUE(same) << name << " is outside the last 2 blocks but changed";
      ++checked_frozen;
    } else if ((in_block(name, 17) || in_block(name, 18)) && name.find("weight") != std::string::npos && !same) {
      ++moved_last;
    }
  }
  EXPECT_GT(statistics, 0);
  EXPECT_GT(checked_frozen, 0);
  EXPECT_GT(moved_last, 0) << "no weight of the last 2 blocks was trained";

  // Killed after fine-tuning's last checkpoint, before the final weights: the
  // resumed run sets up the fine-tuning phase and ends with the same weights.
  fs::rename(dir / "both" / "weights.safetensors", dir / "both-trained.safetensors");
  nlohmann::json status = read_json(dir / "both" / "run.json");
  status["status"] = "running";
  testing::write_bytes(dir / "both" / "run.json", status.dump(1));
  r = run_tabby({"train", "--resume", (dir / "both").string(), "--threads", "1", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err.find("ms/step"), std::string::npos) << "trained again:\n" << r.err;
  expect_same_tensors(dir / "both-trained.safetensors", dir / "both" / "weights.safetensors");
}

TEST(TrainCli, TutorialCnnOnARealSubsetBeatsTheBaseline) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path data = shared / "datasets" / "cats_and_dogs_filtered";
  if (!fs::is_directory(data)) GTEST_SKIP() << "no " << data;
  const fs::path run = scratch_dir("train_cli_real") / "run";
  CommandResult r = run_tabby({"train", "--data", data.string(), "--split", "train[:50%]", "--val-split",
                               "validation[:40%]", "--model", "tutorial-cnn", "--image-size", "64", "--epochs", "4",
                               "--out", run.string()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = run_tabby({"evaluate", run.string(), "--data", data.string(), "--split", "validation[:40%]", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const nlohmann::json ev = nlohmann::json::parse(r.out);
  EXPECT_EQ(ev.at("num_images").get<int>(), 400);
  const double baseline = ev.at("baseline_accuracy");
  EXPECT_LE(baseline, 0.56);
  EXPECT_GT(ev.at("accuracy").get<double>(), baseline + 0.04) << r.out;
}

}  // namespace
}  // namespace tabby
