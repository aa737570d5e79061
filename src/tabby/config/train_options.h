// Everything that shapes a training run besides the model: optimiser,
// schedule, callbacks, fine-tuning phase. Filled from (lowest to highest
// priority) built-in defaults, a model file's [train] table, an experiment
// file, and command-line flags; recorded in the run folder as JSON.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace tabby {

struct EarlyStoppingOptions {
  bool enabled = false;
  std::string monitor = "val_loss";  // val_loss, val_accuracy, loss, accuracy
  int patience = 3;
  double min_delta = 0.0;
  bool restore_best_weights = true;
};

struct ReduceLrOptions {
  bool enabled = false;
  std::string monitor = "val_loss";
  double factor = 0.2;
  int patience = 2;
  double min_lr = 0.0;
  double min_delta = 1e-4;
};

struct TrainOptions {
  int epochs = 10;
  int64_t batch_size = 32;
  std::string optimizer = "adam";  // adam, adamw, sgd
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
  // Which weights the run keeps as its result: the best by `best_monitor`
  // ("val_accuracy", ...) or the last epoch's ("last").
  std::string keep = "last";
  std::string best_monitor = "val_accuracy";
  std::string feature_cache = "auto";  // auto, on, off
  std::string channels_last = "auto";  // auto (on), on, off: memory layout of images and conv weights
  std::string precision = "auto";      // auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp16 (CUDA, loss scaling)
  int threads = 0;                     // 0: all cores

  double effective_weight_decay() const;
  bool has_fine_tune() const { return fine_tune_epochs > 0; }
  int total_epochs() const { return epochs + (has_fine_tune() ? fine_tune_epochs : 0); }
};

// Applies the keys of `table` (a model file's [train] table, or an
// experiment's) over `options`; unknown keys or wrong types are a tabby::Error
// naming `source`.
void apply_train_table(TrainOptions& options, const nlohmann::json& table, const std::string& source);
// Checks ranges (epochs >= 1, lr > 0, known optimiser and monitors, ...).
void validate(const TrainOptions& options);

nlohmann::json to_json(const TrainOptions& options);
TrainOptions train_options_from_json(const nlohmann::json& j);

// True when a larger value of `monitor` is better (accuracies).
bool monitor_higher_is_better(const std::string& monitor);

}  // namespace tabby
