// The run record (run.json) and the trainer state (checkpoint metadata): one
// JSON form each that gives back the same record, a schema version checked on
// read, clear errors for mistyped fields, and folders written before the
// record was typed (tests/fixtures/run_v1) still read field for field.
#include <gtest/gtest.h>

#include <cstdlib>

#include "support/test_support.h"
#include "tabby/run/history.h"
#include "tabby/run/run_files.h"
#include "tabby/run/run_record.h"
#include "tabby/run/trainer_state.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/safetensors.h"

namespace tabby {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

fs::path fixture_run() {
  const char* src = std::getenv("TABBY_SOURCE_DIR");
  return fs::path(src ? src : ".") / "tests" / "fixtures" / "run_v1";
}

json fixture_json() { return json::parse(read_file(fixture_run() / run_files::kRunJson)); }

// The message of the tabby::Error that reading `j` raises ("" when it reads).
std::string read_error(const json& j) {
  try {
    run_record_from_json(j, "run.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

RunRecord full_record() {
  RunSettings s;
  s.model_name = "my-cnn";
  s.class_names = {"cat", "dog", "bird"};
  s.height = 120;
  s.width = 160;
  s.crop_to_aspect = true;
  s.data.data = "/data/pets";
  s.data.split = "train[:40%]";
  s.data.val_split = "train[40%:50%]";
  s.data.seed = 42;
  s.data_resolved = {{"data", "/data/pets"}, {"split", "train[:40%]"}};
  s.train.epochs = 7;
  s.train.optimizer = OptimizerKind::sgd;
  s.train.keep = KeepWeights::best;
  s.train.precision = PrecisionChoice::bf16;
  s.device = "cpu";
  RunRecord r = new_run_record(s);
  r.status = RunStatus::finished;
  r.epochs_completed = 7;
  r.decoded = DecodedData{100, 20, 10, {40, 30, 30}, {{"train", 2}, {"validation", 0}, {"test", 1}}, 3.5};
  RunResults res;
  res.epochs_completed = 7;
  res.stopped_early = true;
  res.kept_weights = KeepWeights::best;
  res.best_epoch = 5;
  res.best_monitor = Monitor::val_loss;
  res.best_value = 0.25;
  res.feature_cache = true;
  res.train_seconds = 12.5;
  res.params = {1000, 600, 800};
  res.warnings = {"a warning"};
  res.collapsed_at_epoch = 3;
  res.validation = EvalSummary{0.3, 0.9, 20};
  res.test = EvalSummary{0.4, 0.8, 10};
  r.results = res;
  r.error = "";
  return r;
}

TEST(RunRecord, JsonGivesBackTheSameRecord) {
  const RunRecord r = full_record();
  const json j = to_json(r);
  EXPECT_EQ(j["format"], "tabby-run");
  EXPECT_EQ(j["schema"], RunRecord::kSchema);
  EXPECT_EQ(j["status"], "finished");
  EXPECT_EQ(j["results"]["kept_weights"], "best");
  EXPECT_EQ(j["train"]["optimizer"], "sgd");
  // Through text, as run.json is stored.
  const RunRecord back = run_record_from_json(json::parse(j.dump(2)), "run.json");
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.settings.class_names, r.settings.class_names);
  EXPECT_EQ(back.settings.height, 120);
  EXPECT_EQ(back.settings.width, 160);
  EXPECT_EQ(back.settings.data.val_split, "train[40%:50%]");
  EXPECT_EQ(back.settings.train.precision, PrecisionChoice::bf16);
  ASSERT_TRUE(back.decoded.has_value());
  EXPECT_EQ(back.decoded->skipped_files.at("test"), 1);
  ASSERT_TRUE(back.results.has_value());
  EXPECT_EQ(back.results->best_monitor, Monitor::val_loss);
  EXPECT_EQ(back.results->params.trainable_fine_tune, 800);
  ASSERT_TRUE(back.results->test.has_value());
  EXPECT_EQ(back.results->test->num_images, 10);
  EXPECT_TRUE(back.finished());
}

TEST(RunRecord, ARecordStartsCreatedWithThisBuildsVersion) {
  RunSettings s;
  s.class_names = {"a", "b"};
  s.height = s.width = 8;
  const RunRecord r = new_run_record(s);
  EXPECT_EQ(r.status, RunStatus::created);
  EXPECT_EQ(r.tabby_version, TABBY_VERSION);
  EXPECT_FALSE(r.created.empty());
  const json j = to_json(r);
  // Parts a run does not have yet are absent, not empty or zero.
  EXPECT_FALSE(j.contains("results"));
  EXPECT_FALSE(j.contains("images"));
  EXPECT_FALSE(j.contains("error"));
  const RunRecord back = run_record_from_json(j, "run.json");
  EXPECT_FALSE(back.results.has_value());
  EXPECT_FALSE(back.decoded.has_value());
}

TEST(RunRecord, AFolderWrittenBeforeTheSchemaReadsFieldForField) {
  const json old = fixture_json();
  ASSERT_FALSE(old.contains("schema"));
  const RunRecord r = run_record_from_json(old, "run_v1/run.json");
  EXPECT_EQ(r.settings.model_name, "tiny-fixture");
  EXPECT_EQ(r.settings.class_names, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(r.settings.height, 16);
  EXPECT_EQ(r.settings.width, 16);
  EXPECT_EQ(r.settings.data.data, "data");
  EXPECT_EQ(r.settings.data.val, "val");
  EXPECT_EQ(r.settings.data.seed, 1337u);
  EXPECT_EQ(r.settings.data_resolved["val"], "val");
  EXPECT_EQ(r.settings.train.epochs, 3);
  EXPECT_EQ(r.settings.train.batch_size, 8);
  EXPECT_EQ(r.settings.train.keep, KeepWeights::best);
  EXPECT_TRUE(r.settings.train.early_stopping.enabled);
  EXPECT_EQ(r.settings.train.early_stopping.patience, 5);
  EXPECT_TRUE(r.settings.train.reduce_lr.enabled);
  EXPECT_EQ(r.settings.device, "auto");
  EXPECT_EQ(r.status, RunStatus::finished);
  EXPECT_EQ(r.epochs_completed, 3);
  ASSERT_TRUE(r.decoded.has_value());
  EXPECT_EQ(r.decoded->train_images, 24);
  EXPECT_EQ(r.decoded->validation_images, 8);
  EXPECT_EQ(r.decoded->train_class_counts, (std::vector<int64_t>{12, 12}));
  EXPECT_EQ(r.decoded->skipped_files.at("train"), 0);
  ASSERT_TRUE(r.results.has_value());
  EXPECT_EQ(r.results->epochs_completed, 3);
  EXPECT_EQ(r.results->kept_weights, KeepWeights::best);
  EXPECT_EQ(r.results->best_epoch, 1);
  EXPECT_EQ(r.results->best_monitor, Monitor::val_accuracy);
  EXPECT_EQ(r.results->params.total, 62);
  EXPECT_EQ(r.results->collapsed_at_epoch, 1);
  ASSERT_EQ(r.results->warnings.size(), 1u);
  ASSERT_TRUE(r.results->validation.has_value());
  EXPECT_EQ(r.results->validation->num_images, 8);
  EXPECT_FALSE(r.results->test.has_value());
  // Written back, it is the old file plus its schema and the training options added since (at
  // their defaults, which are what the old run used): nothing lost, nothing renamed.
  json expected = old;
  expected["schema"] = RunRecord::kSchema;
  const json defaults = to_json(TrainOptions{});
  for (const auto& [key, value] : defaults.items()) {
    if (!expected["train"].contains(key)) expected["train"][key] = value;
  }
  EXPECT_EQ(to_json(r), expected);
}

TEST(RunRecord, ALaterSchemaIsRefusedWithAHint) {
  json j = fixture_json();
  j["schema"] = RunRecord::kSchema + 1;
  try {
    run_record_from_json(j, "run.json");
    FAIL() << "a later schema was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer tabby"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("upgrade"), std::string::npos) << e.hint();
  }
}

TEST(RunRecord, MistypedOrMissingFieldsAreErrorsNamingTheKey) {
  struct Case {
    std::string what;
    std::function<void(json&)> damage;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"not a run", [](json& j) { j["format"] = "something-else"; }, "not a tabby run record"},
      {"classes missing", [](json& j) { j.erase("classes"); }, "`classes` is missing"},
      {"no classes", [](json& j) { j["classes"] = json::array(); }, "lists no classes"},
      {"size as text", [](json& j) { j["image_size"] = "16"; }, "`image_size`"},
      {"size of three", [](json& j) { j["image_size"] = {16, 16, 3}; }, "`image_size` must be [height, width]"},
      {"status unknown", [](json& j) { j["status"] = "done"; }, "`status` = 'done'"},
      {"status a number", [](json& j) { j["status"] = 3; }, "`status` must be a string"},
      {"epochs as text", [](json& j) { j["epochs_completed"] = "3"; }, "`epochs_completed` must be an integer"},
      {"best epoch as text", [](json& j) { j["results"]["best_epoch"] = "1"; }, "`best_epoch` must be an integer"},
      {"kept unknown", [](json& j) { j["results"]["kept_weights"] = "first"; }, "`kept_weights` = 'first'"},
      {"test half there", [](json& j) { j["results"]["test"] = {{"loss", 1.0}}; }, "`accuracy` is missing"},
      {"train options mistyped", [](json& j) { j["train"]["epochs"] = "ten"; }, "`epochs` must be an integer"},
      {"train options unknown word", [](json& j) { j["train"]["optimizer"] = "rmsprop"; }, "unknown optimizer"},
      {"data mistyped", [](json& j) { j["data"]["seed"] = "1337"; }, "`seed` must be an integer"},
      {"results not a table", [](json& j) { j["results"] = 3; }, "`results` must be a table"},
  };
  for (const auto& c : cases) {
    json j = fixture_json();
    c.damage(j);
    const std::string msg = read_error(j);
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.what << ": got '" << msg << "'";
  }
}

TEST(RunRecord, FolderReadWriteAndUpdate) {
  const fs::path dir = testing::scratch_dir("run_record_folder");
  EXPECT_THROW(read_run_record(dir / "missing"), UsageError);
  EXPECT_THROW(read_run_record(dir), UsageError);  // exists, but holds no run
  EXPECT_FALSE(is_run_dir(dir));
  fs::copy(fixture_run(), dir / "run");
  const fs::path run = dir / "run";
  EXPECT_TRUE(is_run_dir(run));
  const RunRecord before = read_run_record(run);
  const RunRecord after = update_run_record(run, [](RunRecord& r) {
    r.status = RunStatus::failed;
    r.error = "out of memory";
  });
  const RunRecord read_back = read_run_record(run);
  EXPECT_EQ(read_back.status, RunStatus::failed);
  EXPECT_EQ(read_back.error, "out of memory");
  EXPECT_EQ(to_json(read_back), to_json(after));
  EXPECT_EQ(to_json(read_back.settings.train), to_json(before.settings.train));
  testing::write_bytes(run / run_files::kRunJson, "{\"format\": ");
  try {
    read_run_record(run);
    FAIL() << "a damaged run.json was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
  }
}

TEST(History, ReadIfPresentGivesNoEpochsWithoutTheFile) {
  const fs::path run = testing::scratch_dir("history_if_present");
  EXPECT_TRUE(read_history_if_present(run).empty());
  EXPECT_TRUE(read_history_if_present(run / "missing").empty());
  EpochRecord a;
  a.epoch = 1;
  a.loss = 0.5;
  EpochRecord b = a;
  b.epoch = 2;
  b.phase = TrainPhase::fine_tune;
  testing::write_bytes(run / run_files::kHistory, history_to_csv({a, b}));
  const std::vector<EpochRecord> history = read_history_if_present(run);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[1].epoch, 2);
  EXPECT_EQ(history[1].phase, TrainPhase::fine_tune);
  testing::write_bytes(run / run_files::kHistory, "epoch,loss\nnot a number,x\n");
  EXPECT_THROW(read_history_if_present(run), Error);  // present but damaged: an error, not "no epochs"
}

TrainerState full_state() {
  TrainerState s;
  s.epochs_done = 12;
  s.phase = TrainPhase::fine_tune;
  EpochRecord a;
  a.epoch = 11;
  a.loss = 0.5;
  a.accuracy = 0.75;
  a.lr = 1e-3;
  a.seconds = 2.5;  // no validation: val_* stay NaN
  EpochRecord b = a;
  b.epoch = 12;
  b.phase = TrainPhase::fine_tune;
  b.val_loss = 0.4;
  b.val_accuracy = 0.8;
  s.history = {a, b};
  s.lr = 2e-5;
  s.best = {0.8, 12, 0};
  s.early_stopping = {std::nullopt, 0, 1};
  s.reduce_lr = {{0.4, 12, 0}, 1};
  s.loss_scaler = {true, 1024.0, 17, 3};
  s.collapse = {11, 0};
  s.warnings = {"careful"};
  return s;
}

TEST(TrainerState, JsonGivesBackTheSameState) {
  const TrainerState s = full_state();
  const json j = to_json(s);
  EXPECT_EQ(j["schema"], TrainerState::kSchema);
  EXPECT_EQ(j["phase"], "fine-tune");
  EXPECT_TRUE(j["state"]["early_stopping"]["best"].is_null());
  const TrainerState back = trainer_state_from_json(json::parse(j.dump()), "checkpoint");
  EXPECT_EQ(to_json(back), j);
  EXPECT_EQ(back.phase, TrainPhase::fine_tune);
  EXPECT_EQ(back.best, s.best);
  EXPECT_EQ(back.early_stopping, s.early_stopping);
  EXPECT_EQ(back.reduce_lr, s.reduce_lr);
  EXPECT_EQ(back.loss_scaler, s.loss_scaler);
  EXPECT_EQ(back.collapse, s.collapse);
  ASSERT_EQ(back.history.size(), 2u);
  EXPECT_TRUE(std::isnan(back.history[0].val_loss));
  EXPECT_DOUBLE_EQ(back.history[1].val_accuracy, 0.8);
  EXPECT_EQ(back.history[1].phase, TrainPhase::fine_tune);
}

TEST(TrainerState, ACheckpointWrittenBeforeTheSchemaReadsFieldForField) {
  const SafetensorsFile st = read_safetensors(fixture_run() / run_files::kCheckpoint);
  const json meta = json::parse(st.metadata.at("tabby_checkpoint"));
  ASSERT_FALSE(meta.contains("schema"));
  const TrainerState s = trainer_state_from_json(meta, "run_v1 checkpoint");
  EXPECT_EQ(s.epochs_done, 3);
  EXPECT_EQ(s.phase, TrainPhase::train);
  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history[2].epoch, 3);
  EXPECT_DOUBLE_EQ(s.lr, 0.0002);
  EXPECT_EQ(s.best, (MonitorState{0.5, 1, 2}));
  EXPECT_EQ(s.early_stopping.best_epoch, 1);
  EXPECT_EQ(s.reduce_lr.wait, 0);
  EXPECT_EQ(s.reduce_lr.monitor.since_best, 2);
  EXPECT_FALSE(s.loss_scaler.enabled);
  EXPECT_EQ(s.collapse, (CollapseState{1, 1}));
  ASSERT_EQ(s.warnings.size(), 1u);
  json expected = meta;
  expected["schema"] = TrainerState::kSchema;
  expected["state"]["ema_updates"] = 0;  // schema 3: no weight average
  EXPECT_EQ(to_json(s), expected);
}

TEST(TrainerState, ALaterSchemaOrAMissingFieldIsAnError) {
  json j = to_json(full_state());
  j["schema"] = TrainerState::kSchema + 1;
  EXPECT_THROW(trainer_state_from_json(j, "checkpoint"), Error);
  for (const char* key : {"epochs_done", "phase", "history", "state"}) {
    json broken = to_json(full_state());
    broken.erase(key);
    try {
      trainer_state_from_json(broken, "checkpoint");
      ADD_FAILURE() << key << " missing was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  json bad_phase = to_json(full_state());
  bad_phase["phase"] = "warm-up";
  EXPECT_THROW(trainer_state_from_json(bad_phase, "checkpoint"), Error);
}

}  // namespace
}  // namespace tabby
