// Everything that shapes a training run besides the model: optimiser,
// schedule, callbacks, fine-tuning phase. Filled from (lowest to highest
// priority) built-in defaults, a model file's [train] table, an experiment
// file, and command-line flags; recorded in the run folder as JSON. Words
// with a closed set of values are enums here, parsed once when a table is
// applied, and written back as the same words.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>

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

TABBY_ENUM_NAMES(OptimizerKind, {OptimizerKind::adam, "adam"}, {OptimizerKind::adamw, "adamw"},
                 {OptimizerKind::sgd, "sgd"});
TABBY_ENUM_NAMES(Monitor, {Monitor::val_loss, "val_loss"}, {Monitor::val_accuracy, "val_accuracy"},
                 {Monitor::loss, "loss"}, {Monitor::accuracy, "accuracy"});
TABBY_ENUM_NAMES(KeepWeights, {KeepWeights::last, "last"}, {KeepWeights::best, "best"});
TABBY_ENUM_NAMES(Toggle, {Toggle::automatic, "auto"}, {Toggle::on, "on"}, {Toggle::off, "off"});
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

  double effective_weight_decay() const;
  bool has_fine_tune() const { return fine_tune_epochs > 0; }
  int total_epochs() const { return epochs + (has_fine_tune() ? fine_tune_epochs : 0); }
  bool uses_channels_last() const { return channels_last != Toggle::off; }
};

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
