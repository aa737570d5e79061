// Training options: defaults, every [train] key and its aliases, the
// EarlyStopping / ReduceLROnPlateau tables, range checks, and the JSON form a
// run folder records (which must give back the same options).
#include <gtest/gtest.h>

#include "tabby/config/toml_json.h"
#include "tabby/config/train_options.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

using nlohmann::json;

json toml(const std::string& text) { return parse_toml_to_json(text, "t.toml"); }

// The tabby::Error message of applying `table` ("" when it applies cleanly).
std::string apply_error(const json& table) {
  TrainOptions o;
  try {
    apply_train_table(o, table, "model.toml [train]");
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception> ") + e.what();
  }
  return "";
}

// The message of the UsageError validate() raises after `change` ("" if none).
template <typename Change>
std::string validate_error(Change change) {
  TrainOptions o;
  change(o);
  try {
    validate(o);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(TrainOptions, DefaultsAreTheTutorialsAndValid) {
  TrainOptions o;
  EXPECT_EQ(o.epochs, 10);
  EXPECT_EQ(o.batch_size, 32);
  EXPECT_EQ(o.optimizer, OptimizerKind::adam);
  EXPECT_DOUBLE_EQ(o.lr, 1e-3);
  EXPECT_DOUBLE_EQ(o.momentum, 0.0);
  EXPECT_FALSE(o.early_stopping.enabled);
  EXPECT_FALSE(o.reduce_lr.enabled);
  EXPECT_EQ(o.keep, KeepWeights::last);
  EXPECT_EQ(o.feature_cache, Toggle::automatic);
  EXPECT_FALSE(o.has_fine_tune());
  EXPECT_EQ(o.total_epochs(), 10);
  EXPECT_NO_THROW(validate(o));
}

TEST(TrainOptions, EveryKeyOfTheTrainTableApplies) {
  TrainOptions o;
  apply_train_table(o, toml(R"toml(
epochs = 7
batch_size = 16
optimizer = "sgd"
lr = 0.05
momentum = 0.9
weight_decay = 0.0005
seed = 42
fine_tune_last = 3
fine_tune_epochs = 4
fine_tune_lr = 0.00002
keep = "best"
best_monitor = "val_loss"
feature_cache = "off"
threads = 2
channels_last = "on"
image_size = 160
crop_to_aspect = true
)toml"),
                    "m.toml");
  EXPECT_EQ(o.epochs, 7);
  EXPECT_EQ(o.batch_size, 16);
  EXPECT_EQ(o.optimizer, OptimizerKind::sgd);
  EXPECT_DOUBLE_EQ(o.lr, 0.05);
  EXPECT_DOUBLE_EQ(o.momentum, 0.9);
  EXPECT_DOUBLE_EQ(o.weight_decay, 0.0005);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(o.fine_tune_last, 3);
  EXPECT_EQ(o.fine_tune_epochs, 4);
  EXPECT_DOUBLE_EQ(o.fine_tune_lr, 2e-5);
  EXPECT_EQ(o.keep, KeepWeights::best);
  EXPECT_EQ(o.best_monitor, Monitor::val_loss);
  EXPECT_EQ(o.feature_cache, Toggle::off);
  EXPECT_EQ(o.threads, 2);
  EXPECT_EQ(o.channels_last, Toggle::on);
  EXPECT_TRUE(o.has_fine_tune());
  EXPECT_EQ(o.total_epochs(), 11);
  EXPECT_NO_THROW(validate(o));
}

TEST(TrainOptions, LaterTablesOverrideOnlyTheirKeys) {
  TrainOptions o;
  apply_train_table(o, {{"epochs", 5}, {"lr", 0.1}}, "model.toml");
  apply_train_table(o, {{"learning_rate", 0.002}}, "experiment.toml");  // Keras' spelling
  EXPECT_EQ(o.epochs, 5);
  EXPECT_DOUBLE_EQ(o.lr, 0.002);
  // An integer is a fine number; null means "no table".
  apply_train_table(o, {{"lr", 1}}, "x");
  EXPECT_DOUBLE_EQ(o.lr, 1.0);
  apply_train_table(o, json(), "x");
  EXPECT_EQ(o.epochs, 5);
}

TEST(TrainOptions, EarlyStoppingAndReduceLrTakeABoolOrATable) {
  TrainOptions o;
  apply_train_table(o, toml("early_stopping = true\nreduce_lr = true\n"), "m.toml");
  EXPECT_TRUE(o.early_stopping.enabled);
  EXPECT_EQ(o.early_stopping.monitor, Monitor::val_loss);
  EXPECT_EQ(o.early_stopping.patience, 3);
  EXPECT_TRUE(o.early_stopping.restore_best_weights);
  EXPECT_TRUE(o.reduce_lr.enabled);
  EXPECT_DOUBLE_EQ(o.reduce_lr.factor, 0.2);

  apply_train_table(o, toml("early_stopping = false\nreduce_lr = false\n"), "m.toml");
  EXPECT_FALSE(o.early_stopping.enabled);
  EXPECT_FALSE(o.reduce_lr.enabled);

  TrainOptions t;
  apply_train_table(t, toml(R"toml(
[early_stopping]
monitor = "val_accuracy"
patience = 5
min_delta = 0.01
restore_best_weights = false
[reduce_lr]
monitor = "loss"
factor = 0.5
patience = 1
min_lr = 1e-6
min_delta = 0.001
)toml"),
                    "m.toml");
  // A table switches the callback on.
  EXPECT_TRUE(t.early_stopping.enabled);
  EXPECT_EQ(t.early_stopping.monitor, Monitor::val_accuracy);
  EXPECT_EQ(t.early_stopping.patience, 5);
  EXPECT_DOUBLE_EQ(t.early_stopping.min_delta, 0.01);
  EXPECT_FALSE(t.early_stopping.restore_best_weights);
  EXPECT_TRUE(t.reduce_lr.enabled);
  EXPECT_EQ(t.reduce_lr.monitor, Monitor::loss);
  EXPECT_DOUBLE_EQ(t.reduce_lr.factor, 0.5);
  EXPECT_EQ(t.reduce_lr.patience, 1);
  EXPECT_DOUBLE_EQ(t.reduce_lr.min_lr, 1e-6);
  EXPECT_DOUBLE_EQ(t.reduce_lr.min_delta, 0.001);
  EXPECT_NO_THROW(validate(t));

  // ... unless it says otherwise.
  TrainOptions off;
  apply_train_table(off, toml("early_stopping = { enabled = false, patience = 9 }\n"), "m.toml");
  EXPECT_FALSE(off.early_stopping.enabled);
  EXPECT_EQ(off.early_stopping.patience, 9);
}

TEST(TrainOptions, MistakesNameTheSourceAndTheKey) {
  struct Case {
    std::string what, text, expected;
  };
  const std::vector<Case> cases = {
      {"unknown key", "epoch = 3\n", "unknown key 'epoch'"},
      {"epochs not an integer", "epochs = 2.5\n", "`epochs` must be an integer"},
      {"epochs as text", "epochs = \"10\"\n", "`epochs` must be an integer"},
      {"lr as text", "lr = \"fast\"\n", "`lr` must be a number"},
      {"optimizer not a string", "optimizer = 1\n", "`optimizer` must be a string"},
      {"seed not an integer", "seed = 1.5\n", "`seed` must be an integer"},
      {"negative seed", "seed = -3\n", "`seed`"},
      {"epochs beyond int", "epochs = 4294967297\n", "`epochs`"},
      {"early_stopping wrong type", "early_stopping = 3\n", "`early_stopping` must be true/false or a table"},
      {"early_stopping unknown key", "early_stopping = { patients = 3 }\n", "early_stopping: unknown key 'patients'"},
      {"early_stopping wrong value type", "early_stopping = { restore_best_weights = \"yes\" }\n",
       "`restore_best_weights` must be true or false"},
      {"reduce_lr wrong type", "reduce_lr = \"on\"\n", "`reduce_lr` must be true/false or a table"},
      {"reduce_lr unknown key", "reduce_lr = { cooldown = 1 }\n", "reduce_lr: unknown key 'cooldown'"},
      {"reduce_lr wrong value type", "reduce_lr = { factor = \"half\" }\n", "`factor` must be a number"},
  };
  for (const auto& c : cases) {
    const std::string msg = apply_error(toml(c.text));
    EXPECT_EQ(msg.find("<other exception>"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find("model.toml [train]"), std::string::npos) << c.what << ": '" << msg << "'";
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.what << ": got '" << msg << "'";
  }
  EXPECT_NE(apply_error(json(3)).find("must be a table"), std::string::npos);
  // The unknown-key hint lists the known keys.
  TrainOptions o;
  try {
    apply_train_table(o, {{"epoch", 3}}, "m.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("epochs"), std::string::npos) << e.hint();
    EXPECT_NE(e.hint().find("early_stopping"), std::string::npos) << e.hint();
  }
}

TEST(TrainOptions, ValidateChecksEveryRange) {
  EXPECT_NE(validate_error([](TrainOptions& o) { o.epochs = 0; }).find("--epochs"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.batch_size = 0; }).find("--batch-size"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.batch_size = 70000; }).find("--batch-size"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.lr = 0; }).find("--lr"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.lr = -0.1; }).find("--lr"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.lr = 11; }).find("--lr"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.momentum = 1.0; }).find("--momentum"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.momentum = -0.5; }).find("--momentum"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.fine_tune_epochs = -1; }).find("--fine-tune-epochs"),
            std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.fine_tune_epochs = 2; }).find("--fine-tune-last"),
            std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) {
              o.fine_tune_epochs = 2;
              o.fine_tune_last = 3;
              o.fine_tune_lr = 0;
            }).find("--fine-tune-lr"),
            std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.early_stopping.patience = -1; }).find("patience"),
            std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.reduce_lr.patience = -1; }).find("patience"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.reduce_lr.factor = 1.0; }).find("factor"), std::string::npos);
  EXPECT_NE(validate_error([](TrainOptions& o) { o.reduce_lr.factor = 0.0; }).find("factor"), std::string::npos);
  // Boundaries that are fine.
  EXPECT_EQ(validate_error([](TrainOptions& o) {
              o.epochs = 1;
              o.batch_size = 1;
              o.optimizer = OptimizerKind::adamw;
              o.momentum = 0.99;
              o.fine_tune_epochs = 1;
              o.fine_tune_last = -1;
              o.early_stopping.monitor = Monitor::accuracy;
              o.reduce_lr.monitor = Monitor::val_accuracy;
              o.best_monitor = Monitor::loss;
              o.early_stopping.patience = 0;
            }),
            "");
}

// Words with a closed set of values are parsed once, where a table is applied:
// an unknown one is a UsageError that names the flag and the choices.
TEST(TrainOptions, UnknownWordsAreRefusedWhenApplied) {
  struct Case {
    json table;
    std::string expected, hint;
  };
  const std::vector<Case> cases = {
      {{{"optimizer", "rmsprop"}}, "--optimizer rmsprop: unknown optimizer", "adam, adamw or sgd"},
      {{{"keep", "first"}}, "--keep must be last or best", ""},
      {{{"feature_cache", "maybe"}}, "--feature-cache must be auto, on or off", ""},
      {{{"channels_last", "yes"}}, "--channels-last must be auto, on or off", ""},
      {{{"precision", "fp8"}}, "--precision fp8: unknown precision", "auto, fp32, bf16 or fp16"},
      {{{"best_monitor", "f1"}}, "unknown monitor 'f1'", "val_loss, val_accuracy, loss or accuracy"},
      {{{"early_stopping", {{"monitor", "val_acc"}}}}, "unknown monitor 'val_acc'", "val_loss"},
      {{{"reduce_lr", {{"monitor", "auc"}}}}, "unknown monitor 'auc'", "val_loss"},
  };
  for (const auto& c : cases) {
    TrainOptions o;
    try {
      apply_train_table(o, c.table, "command line");
      ADD_FAILURE() << c.table.dump() << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos) << e.what();
      EXPECT_NE(e.hint().find(c.hint), std::string::npos) << e.hint();
    }
  }
  // Every word each enum knows goes through its name and back.
  for (const auto& [value, name] : EnumNames<OptimizerKind>::table) EXPECT_EQ(enum_from_name<OptimizerKind>(name), value);
  for (const auto& [value, name] : EnumNames<Monitor>::table) EXPECT_EQ(enum_from_name<Monitor>(name), value);
  for (const auto& [value, name] : EnumNames<Toggle>::table) EXPECT_EQ(enum_from_name<Toggle>(name), value);
  for (const auto& [value, name] : EnumNames<PrecisionChoice>::table) {
    EXPECT_EQ(enum_from_name<PrecisionChoice>(name), value);
  }
  EXPECT_EQ(enum_choices<KeepWeights>(), "last or best");
  EXPECT_FALSE(enum_from_name<Toggle>("automatic").has_value());
}

TEST(TrainOptions, WeightDecayDefaultsPerOptimizer) {
  TrainOptions o;
  EXPECT_DOUBLE_EQ(o.effective_weight_decay(), 0.0);
  o.optimizer = OptimizerKind::adamw;
  EXPECT_DOUBLE_EQ(o.effective_weight_decay(), 0.01);  // PyTorch's and Keras' AdamW default
  o.weight_decay = 0.0;
  EXPECT_DOUBLE_EQ(o.effective_weight_decay(), 0.0);
  o.optimizer = OptimizerKind::sgd;
  o.weight_decay = 0.003;
  EXPECT_DOUBLE_EQ(o.effective_weight_decay(), 0.003);
}

TEST(TrainOptions, MonitorsKnowWhichWayIsBetter) {
  EXPECT_TRUE(monitor_higher_is_better(Monitor::val_accuracy));
  EXPECT_TRUE(monitor_higher_is_better(Monitor::accuracy));
  EXPECT_FALSE(monitor_higher_is_better(Monitor::val_loss));
  EXPECT_FALSE(monitor_higher_is_better(Monitor::loss));
  EXPECT_EQ(without_validation(Monitor::val_accuracy), Monitor::accuracy);
  EXPECT_EQ(without_validation(Monitor::val_loss), Monitor::loss);
  EXPECT_EQ(without_validation(Monitor::loss), Monitor::loss);
}

TEST(TrainOptions, JsonRecordGivesBackTheSameOptions) {
  TrainOptions o;
  o.epochs = 12;
  o.batch_size = 8;
  o.optimizer = OptimizerKind::adamw;
  o.lr = 3e-4;
  o.momentum = 0.5;
  o.weight_decay = 0.02;
  o.seed = 9007199254740993ULL;  // beyond a double's exact integers
  o.fine_tune_last = 2;
  o.fine_tune_epochs = 3;
  o.fine_tune_lr = 1e-6;
  o.early_stopping = {true, Monitor::val_accuracy, 4, 0.002, false};
  o.reduce_lr = {true, Monitor::loss, 0.3, 5, 1e-7, 0.01};
  o.keep = KeepWeights::best;
  o.best_monitor = Monitor::val_loss;
  o.feature_cache = Toggle::on;
  o.channels_last = Toggle::off;
  o.precision = PrecisionChoice::bf16;
  o.threads = 3;

  const json j = to_json(o);
  EXPECT_EQ(j["optimizer"], "adamw");
  EXPECT_EQ(j["early_stopping"]["patience"], 4);
  // Through text, as run.json is stored.
  TrainOptions back = train_options_from_json(json::parse(j.dump()));
  EXPECT_EQ(back.epochs, o.epochs);
  EXPECT_EQ(back.batch_size, o.batch_size);
  EXPECT_EQ(back.optimizer, o.optimizer);
  EXPECT_DOUBLE_EQ(back.lr, o.lr);
  EXPECT_DOUBLE_EQ(back.momentum, o.momentum);
  EXPECT_DOUBLE_EQ(back.effective_weight_decay(), 0.02);
  EXPECT_EQ(back.seed, o.seed);
  EXPECT_EQ(back.fine_tune_last, 2);
  EXPECT_EQ(back.fine_tune_epochs, 3);
  EXPECT_DOUBLE_EQ(back.fine_tune_lr, 1e-6);
  EXPECT_TRUE(back.early_stopping.enabled);
  EXPECT_EQ(back.early_stopping.monitor, Monitor::val_accuracy);
  EXPECT_EQ(back.early_stopping.patience, 4);
  EXPECT_DOUBLE_EQ(back.early_stopping.min_delta, 0.002);
  EXPECT_FALSE(back.early_stopping.restore_best_weights);
  EXPECT_TRUE(back.reduce_lr.enabled);
  EXPECT_EQ(back.reduce_lr.monitor, Monitor::loss);
  EXPECT_DOUBLE_EQ(back.reduce_lr.factor, 0.3);
  EXPECT_EQ(back.reduce_lr.patience, 5);
  EXPECT_DOUBLE_EQ(back.reduce_lr.min_lr, 1e-7);
  EXPECT_DOUBLE_EQ(back.reduce_lr.min_delta, 0.01);
  EXPECT_EQ(back.keep, KeepWeights::best);
  EXPECT_EQ(back.best_monitor, Monitor::val_loss);
  EXPECT_EQ(back.feature_cache, Toggle::on);
  EXPECT_EQ(back.channels_last, Toggle::off);
  EXPECT_EQ(back.precision, PrecisionChoice::bf16);
  EXPECT_EQ(back.threads, 3);
  EXPECT_EQ(to_json(back), j);

  // Disabled callbacks stay disabled through the record.
  TrainOptions plain;
  TrainOptions plain_back = train_options_from_json(to_json(plain));
  EXPECT_FALSE(plain_back.early_stopping.enabled);
  EXPECT_FALSE(plain_back.reduce_lr.enabled);
  EXPECT_EQ(to_json(plain_back), to_json(plain));
}

}  // namespace
}  // namespace tabby
