// Everything that shapes a training run besides the model: optimiser,
// schedule, regularisation, callbacks, fine-tuning phase. Filled from (lowest
// to highest priority) built-in defaults, a model file's [train] table, a
// recipe, an experiment file, and command-line flags; recorded in the run
// folder as JSON. Words with a closed set of values are enums here, parsed
// once when a table is applied, and written back as the same words.
//
// Each option is defined once, in train_option_defs() (train_options.cpp):
// its [train]/JSON key, its field, its command-line flag and help, its range.
// Files, flags, run.json and validation all read that one table.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tabby/util/enum_names.h"

namespace tabby {

enum class OptimizerKind { adam, adamw, sgd };
// The metrics a callback can watch.
enum class Monitor { val_loss, val_accuracy, loss, accuracy };
// Which weights a run keeps as its result.
enum class KeepWeights { last, best };
// auto | on | off settings (feature cache, channels-last layout).
enum class Toggle { automatic, on, off };
// What the user asked for; the engine resolves `automatic` per device.
enum class PrecisionChoice { automatic, fp32, bf16, fp16 };
// How the learning rate moves within a phase, stepped per batch.
enum class Schedule { constant, cosine, one_cycle };

TABBY_ENUM_NAMES(OptimizerKind, {OptimizerKind::adam, "adam"}, {OptimizerKind::adamw, "adamw"},
                 {OptimizerKind::sgd, "sgd"});
TABBY_ENUM_NAMES(Monitor, {Monitor::val_loss, "val_loss"}, {Monitor::val_accuracy, "val_accuracy"},
                 {Monitor::loss, "loss"}, {Monitor::accuracy, "accuracy"});
TABBY_ENUM_NAMES(KeepWeights, {KeepWeights::last, "last"}, {KeepWeights::best, "best"});
TABBY_ENUM_NAMES(Toggle, {Toggle::automatic, "auto"}, {Toggle::on, "on"}, {Toggle::off, "off"});
TABBY_ENUM_NAMES(Schedule, {Schedule::constant, "constant"}, {Schedule::cosine, "cosine"},
                 {Schedule::one_cycle, "one_cycle"});
TABBY_ENUM_NAMES(PrecisionChoice, {PrecisionChoice::automatic, "auto"}, {PrecisionChoice::fp32, "fp32"},
                 {PrecisionChoice::bf16, "bf16"}, {PrecisionChoice::fp16, "fp16"});

struct EarlyStoppingOptions {
  bool enabled = false;
  Monitor monitor = Monitor::val_loss;
  int patience = 3;
  double min_delta = 0.0;
  bool restore_best_weights = true;
};

struct ReduceLrOptions {
  bool enabled = false;
  Monitor monitor = Monitor::val_loss;
  double factor = 0.2;
  int patience = 2;
  double min_lr = 0.0;
  double min_delta = 1e-4;
};

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 32;
  OptimizerKind optimizer = OptimizerKind::adam;
  double lr = 1e-3;
  double momentum = 0.0;        // sgd
  double weight_decay = -1.0;   // < 0: the optimiser's default (0; 0.01 for adamw)
  uint64_t seed = 1337;
  // Second phase: unfreeze the backbone's last `fine_tune_last` units and
  // train `fine_tune_epochs` more epochs at `fine_tune_lr`.
  int fine_tune_last = 0;
  int fine_tune_epochs = 0;
  double fine_tune_lr = 1e-5;
  EarlyStoppingOptions early_stopping;
  ReduceLrOptions reduce_lr;
  // The run's result: the best weights by `best_monitor`, or the last epoch's.
  KeepWeights keep = KeepWeights::last;
  Monitor best_monitor = Monitor::val_accuracy;
  Toggle feature_cache = Toggle::automatic;  // on when exact
  Toggle channels_last = Toggle::automatic;  // memory layout of images and conv weights (auto: on)
  PrecisionChoice precision = PrecisionChoice::automatic;  // auto: bf16 on CUDA, fp32 on CPU
  int threads = 0;                                          // 0: all cores
  // Learning rate within each phase (train/schedule.h): linear warmup over
  // `warmup_epochs` (fractions allowed), then constant, cosine to zero, or
  // one-cycle (cosine up to the peak over 30 %, then cosine down).
  Schedule schedule = Schedule::constant;
  double warmup_epochs = 0;
  // Discriminative learning rates: the backbone's parameters train at
  // lr * backbone_lr_ratio, and each backbone unit below the last one at
  // layer_decay times the unit above it (1: all the same).
  double backbone_lr_ratio = 1.0;
  double layer_decay = 1.0;
  // Regularisation (train/criterion.h, train/mix.h, train/ema.h).
  double label_smoothing = 0;  // of the targets, as PyTorch's CrossEntropyLoss
  double mixup = 0;            // Beta(a, a) mixing of image pairs; 0: off
  double cutmix = 0;           // Beta(a, a) pasted boxes; with mixup, one of the two per batch
  double ema = 0;              // decay of the weights' moving average; 0: off
  // Batch augmentation placed before the model's layers (config/augment_spec.h notation).
  std::string augment;
  // The recipe (config/recipes.h) whose settings were applied; empty: none.
  std::string recipe;

  double effective_weight_decay() const;
  bool has_fine_tune() const { return fine_tune_epochs > 0; }
  int total_epochs() const { return epochs + (has_fine_tune() ? fine_tune_epochs : 0); }
  bool uses_channels_last() const { return channels_last != Toggle::off; }
  bool mixes_images() const { return mixup > 0 || cutmix > 0; }
};

// The value kinds an option can have, for flags' parsing and help.
enum class OptionKind { integer, number, word, boolean };

// One training option. `key` is its [train] and JSON key; an option of a
// callback table is "table.key" ("early_stopping.patience"), and the table's
// own boolean ("early_stopping") is its `enabled`. `flag` is empty for
// options only files set; `flag_value` is what a boolean flag sets.
struct TrainOptionDef {
  std::string key;
  std::string flag;
  std::string help;
  std::string group;  // of the help text
  OptionKind kind = OptionKind::word;
  bool flag_value = true;
  std::function<void(TrainOptions&, const nlohmann::json&, const std::string& source)> set;
  std::function<nlohmann::json(const TrainOptions&)> get;
  // Inclusive bounds checked by validate() (numbers and integers).
  std::optional<std::pair<double, double>> range;
};

// Every option, in help order.
const std::vector<TrainOptionDef>& train_option_defs();
const TrainOptionDef* find_train_option(const std::string& key);

// Applies the keys of `table` (a model file's [train] table, or an
// experiment's) over `options`; unknown keys or wrong types are a tabby::Error
// naming `source`, an unknown word for an enum a UsageError.
void apply_train_table(TrainOptions& options, const nlohmann::json& table, const std::string& source);
// Checks ranges (epochs >= 1, lr > 0, patience >= 0, ...).
void validate(const TrainOptions& options);

nlohmann::json to_json(const TrainOptions& options);
TrainOptions train_options_from_json(const nlohmann::json& j);

// True when a larger value of `monitor` is better (accuracies).
bool monitor_higher_is_better(Monitor monitor);
// The training-data counterpart of a val_* monitor (for runs without validation data).
Monitor without_validation(Monitor monitor);

}  // namespace tabby
