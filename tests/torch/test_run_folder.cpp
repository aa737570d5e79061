// A run folder on the engine's side: a folder written before the run record
// was typed (tests/fixtures/run_v1) loads and predicts, its checkpoint's
// optimiser state fits the model, and training resumes from that checkpoint;
// the RunWriter replaces exactly the files it owns after each epoch.
#include <gtest/gtest.h>

#include <cstdlib>

#include "support/test_support.h"
#include "tabby/api/train_job.h"
#include "tabby/config/model_spec.h"
#include "support/image_encode.h"
#include "tabby/nn/network.h"
#include "tabby/run/history.h"
#include "tabby/run/run_files.h"
#include "tabby/train/checkpoint.h"
#include "tabby/train/optimizer.h"
#include "tabby/inference/saved_run.h"
#include "tabby/train/run_writer.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;

fs::path fixture_run() {
  const char* src = std::getenv("TABBY_SOURCE_DIR");
  return fs::path(src ? src : ".") / "tests" / "fixtures" / "run_v1";
}

fs::path copy_of_fixture(const std::string& name) {
  const fs::path dir = testing::scratch_dir(name);
  fs::copy(fixture_run(), dir / "run");
  return dir / "run";
}

// 16x16 images of the fixture's classes, `per_class` each.
void write_run_folder_images(const fs::path& root, int per_class) {
  int seed = 0;
  for (const std::string cls : {"cats", "dogs"}) {
    for (int i = 0; i < per_class; ++i) {
      Image image(16, 16);
      const auto pattern = testing::test_pattern(16, 16, ++seed);
      std::copy(pattern.begin(), pattern.end(), image.pixels.begin());
      testing::write_bytes(root / cls / ("img" + std::to_string(i) + ".png"), encode_png(image));
    }
  }
}

TEST(RunFolder, AFolderWrittenBeforeTheSchemaLoadsAndPredicts) {
  const fs::path run = copy_of_fixture("run_folder_load");
  LoadedRun loaded = load_run(run, torch::kCPU);
  EXPECT_EQ(loaded.settings().class_names, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(loaded.model.name, "tiny-fixture");
  EXPECT_TRUE(loaded.record.finished());
  torch::NoGradGuard no_grad;
  const auto probs = loaded.net->probabilities(loaded.net->forward(torch::full({3, 3, 16, 16}, 128.0f)));
  ASSERT_EQ(probs.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_NEAR(probs.sum(1)[0].item<double>(), 1.0, 1e-5);
  // The kept weights are the fixture's best ones (--keep best).
  const auto best = load_run(run, torch::kCPU, run_files::kBest);
  for (const auto& [name, tensor] : best.net->named_state()) {
    EXPECT_TRUE(torch::equal(tensor, loaded.net->named_state().at(name))) << name;
  }
}

TEST(RunFolder, ItsCheckpointsOptimizerStateFitsTheModel) {
  const fs::path run = copy_of_fixture("run_folder_checkpoint");
  const CheckpointData cp = read_checkpoint(run / run_files::kCheckpoint);
  EXPECT_EQ(cp.state.epochs_done, 3);
  EXPECT_EQ(cp.weights.size(), 4u);
  const RunRecord record = read_run_record(run);
  nn::Network net(read_run_model(run), 2, 16, 16);
  net->load_named_state(cp.weights, /*strict=*/true);
  std::vector<torch::Tensor> params;
  for (auto& p : net->parameters()) params.push_back(p);
  auto optimizer = make_optimizer(record.settings.train, cp.state.lr, params);
  EXPECT_NO_THROW(load_optimizer_state(*optimizer, cp.optimizer_state));
}

TEST(RunFolder, TrainingResumesFromACheckpointWrittenBeforeTheSchema) {
  const fs::path run = copy_of_fixture("run_folder_resume");
  const fs::path data = run.parent_path() / "data";
  write_run_folder_images(data / "train", 6);
  write_run_folder_images(data / "val", 2);
  // The fixture finished its 3 epochs; asked for 4, it trains one more from its checkpoint.
  update_run_record(run, [&](RunRecord& r) {
    r.status = RunStatus::running;
    r.results.reset();
    r.settings.train.epochs = 4;
    r.settings.data.data = (data / "train").string();
    r.settings.data.val = (data / "val").string();
  });
  const auto old_history = read_checkpoint(run / run_files::kCheckpoint).state.history;
  const TrainOutcome outcome = resume_train_job(run, "cpu", 1);
  ASSERT_EQ(outcome.fit.history.size(), 4u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_DOUBLE_EQ(outcome.fit.history[k].loss, old_history[k].loss) << "epoch " << k + 1;
    EXPECT_DOUBLE_EQ(outcome.fit.history[k].val_accuracy, old_history[k].val_accuracy) << "epoch " << k + 1;
  }
  // The learning rate the old checkpoint had reduced to carries on.
  EXPECT_DOUBLE_EQ(outcome.fit.history[3].lr, 0.0002);
  const RunRecord after = read_run_record(run);
  EXPECT_EQ(after.status, RunStatus::finished);
  EXPECT_EQ(after.epochs_completed, 4);
  ASSERT_TRUE(after.results.has_value());
  EXPECT_EQ(after.results->epochs_completed, 4);
  const auto meta = read_checkpoint(run / run_files::kCheckpoint);
  EXPECT_EQ(meta.state.epochs_done, 4);
  // The fixture's warning, said before, is kept and not said twice.
  EXPECT_EQ(after.results->warnings.size(), 1u);
}

TEST(RunFolder, TheWriterReplacesItsFilesAfterAnEpoch) {
  const fs::path run = copy_of_fixture("run_folder_writer");
  for (const char* f : {run_files::kBest, run_files::kCheckpoint, run_files::kHistory, run_files::kWeights}) {
    fs::remove(run / f);
  }
  nn::Network net(read_run_model(run), 2, 16, 16);
  std::vector<torch::Tensor> params;
  for (auto& p : net->parameters()) params.push_back(p);
  auto optimizer = make_optimizer(TrainOptions{}, 1e-3, params);
  TrainerState state;
  state.epochs_done = 1;
  EpochRecord rec;
  rec.epoch = 1;
  rec.loss = 0.7;
  state.history = {rec};
  const RunWriter writer(run);
  writer.epoch_finished(*net, *optimizer, state, /*improved=*/false);
  EXPECT_FALSE(fs::exists(run / run_files::kBest));
  EXPECT_TRUE(fs::exists(run / run_files::kCheckpoint));
  EXPECT_EQ(history_from_csv(read_file(run / run_files::kHistory), "h").size(), 1u);
  EXPECT_EQ(read_run_record(run).status, RunStatus::running);
  EXPECT_EQ(read_run_record(run).epochs_completed, 1);
  state.epochs_done = 2;
  writer.epoch_finished(*net, *optimizer, state, /*improved=*/true);
  EXPECT_TRUE(fs::exists(run / run_files::kBest));
  EXPECT_EQ(writer.read_best_weights().size(), 4u);
  EXPECT_EQ(writer.read_checkpoint().state.epochs_done, 2);
  EXPECT_FALSE(fs::exists(run / run_files::kWeights));
  writer.save_kept_weights(*net, KeepWeights::best);
  EXPECT_NO_THROW(load_run(run, torch::kCPU));
  // Without a folder it writes nothing and says so.
  EXPECT_FALSE(RunWriter("").writes());
  EXPECT_TRUE(RunWriter("").read_best_weights().empty());
}

}  // namespace
}  // namespace tabby
