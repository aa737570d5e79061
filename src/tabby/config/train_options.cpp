#include "tabby/config/train_options.h"

#include <type_traits>

#include "tabby/util/error.h"
#include "tabby/util/json_fields.h"

namespace tabby {

namespace {

using nlohmann::json;

template <typename T>
T read(const json& table, const std::string& key, const std::string& source) {
  return json_fields::as<T>(table.at(key), key, source);
}

std::string flag_of(std::string key) {
  for (char& c : key) c = c == '_' ? '-' : c;
  return "--" + key;
}

// The messages a wrong word got before these were enums, for flags and files alike.
template <typename E>
UsageError unknown_choice(const std::string& key, const std::string& word) {
  if constexpr (std::is_same_v<E, Monitor>) {
    return UsageError("unknown monitor '" + word + "'", "use " + enum_choices<Monitor>());
  } else if constexpr (std::is_same_v<E, OptimizerKind> || std::is_same_v<E, PrecisionChoice>) {
    return UsageError(flag_of(key) + " " + word + ": unknown " + key, "use " + enum_choices<E>());
  } else {
    return UsageError(flag_of(key) + " must be " + enum_choices<E>());
  }
}

template <typename E>
E read_choice(const json& table, const std::string& key, const std::string& source) {
  const std::string word = read<std::string>(table, key, source);
  if (auto value = enum_from_name<E>(word)) return *value;
  throw unknown_choice<E>(key, word);
}

void apply_early_stopping(EarlyStoppingOptions& es, const json& t, const std::string& source) {
  es.enabled = true;
  if (t.is_boolean()) {
    es.enabled = t.get<bool>();
    return;
  }
  if (!t.is_object()) throw Error(source + ": `early_stopping` must be true/false or a table");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    if (k == "monitor") es.monitor = read_choice<Monitor>(t, k, source);
    else if (k == "patience") es.patience = read<int>(t, k, source);
    else if (k == "min_delta") es.min_delta = read<double>(t, k, source);
    else if (k == "restore_best_weights") es.restore_best_weights = read<bool>(t, k, source);
    else if (k == "enabled") es.enabled = read<bool>(t, k, source);
    else throw Error(source + ": early_stopping: unknown key '" + k + "'", "use monitor, patience, min_delta, restore_best_weights");
  }
}

void apply_reduce_lr(ReduceLrOptions& r, const json& t, const std::string& source) {
  r.enabled = true;
  if (t.is_boolean()) {
    r.enabled = t.get<bool>();
    return;
  }
  if (!t.is_object()) throw Error(source + ": `reduce_lr` must be true/false or a table");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    if (k == "monitor") r.monitor = read_choice<Monitor>(t, k, source);
    else if (k == "factor") r.factor = read<double>(t, k, source);
    else if (k == "patience") r.patience = read<int>(t, k, source);
    else if (k == "min_lr") r.min_lr = read<double>(t, k, source);
    else if (k == "min_delta") r.min_delta = read<double>(t, k, source);
    else if (k == "enabled") r.enabled = read<bool>(t, k, source);
    else throw Error(source + ": reduce_lr: unknown key '" + k + "'", "use monitor, factor, patience, min_lr, min_delta");
  }
}

// One [train] key; false when the key is not an option of TrainOptions.
bool apply_key(TrainOptions& o, const json& t, const std::string& k, const std::string& source) {
  if (k == "epochs") o.epochs = read<int>(t, k, source);
  else if (k == "batch_size") o.batch_size = read<int64_t>(t, k, source);
  else if (k == "optimizer") o.optimizer = read_choice<OptimizerKind>(t, k, source);
  else if (k == "lr" || k == "learning_rate") o.lr = read<double>(t, k, source);
  else if (k == "momentum") o.momentum = read<double>(t, k, source);
  else if (k == "weight_decay") o.weight_decay = read<double>(t, k, source);
  else if (k == "seed") o.seed = read<uint64_t>(t, k, source);
  else if (k == "fine_tune_last") o.fine_tune_last = read<int>(t, k, source);
  else if (k == "fine_tune_epochs") o.fine_tune_epochs = read<int>(t, k, source);
  else if (k == "fine_tune_lr") o.fine_tune_lr = read<double>(t, k, source);
  else if (k == "early_stopping") apply_early_stopping(o.early_stopping, t.at(k), source);
  else if (k == "reduce_lr") apply_reduce_lr(o.reduce_lr, t.at(k), source);
  else if (k == "keep") o.keep = read_choice<KeepWeights>(t, k, source);
  else if (k == "best_monitor") o.best_monitor = read_choice<Monitor>(t, k, source);
  else if (k == "feature_cache") o.feature_cache = read_choice<Toggle>(t, k, source);
  else if (k == "threads") o.threads = read<int>(t, k, source);
  else if (k == "channels_last") o.channels_last = read_choice<Toggle>(t, k, source);
  else if (k == "precision") o.precision = read_choice<PrecisionChoice>(t, k, source);
  else return false;
  return true;
}

}  // namespace

double TrainOptions::effective_weight_decay() const {
  if (weight_decay >= 0) return weight_decay;
  return optimizer == OptimizerKind::adamw ? 0.01 : 0.0;
}

void apply_train_table(TrainOptions& o, const json& t, const std::string& source) {
  if (t.is_null()) return;
  if (!t.is_object()) throw Error(source + ": [train] must be a table");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    // Data settings may sit in [train] too; the caller reads them.
    if (apply_key(o, t, k, source) || k == "image_size" || k == "crop_to_aspect") continue;
    throw Error(source + ": [train] has an unknown key '" + k + "'",
                "known: epochs, batch_size, optimizer, lr, momentum, weight_decay, seed, fine_tune_last, "
                "fine_tune_epochs, fine_tune_lr, early_stopping, reduce_lr, keep, best_monitor, feature_cache, "
                "threads, channels_last, precision, image_size, crop_to_aspect");
  }
}

void validate(const TrainOptions& o) {
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (o.batch_size < 1 || o.batch_size > 65536) throw UsageError("--batch-size must be between 1 and 65536");
  if (!(o.lr > 0) || o.lr > 10) throw UsageError("--lr must be in (0, 10]", "typical values are 1e-5 to 1e-2");
  if (o.momentum < 0 || o.momentum >= 1) throw UsageError("--momentum must be in [0, 1)");
  if (o.fine_tune_epochs < 0) throw UsageError("--fine-tune-epochs must not be negative");
  if (o.fine_tune_epochs > 0 && !(o.fine_tune_lr > 0)) throw UsageError("--fine-tune-lr must be positive");
  if (o.fine_tune_epochs > 0 && o.fine_tune_last == 0) {
    throw UsageError("--fine-tune-epochs needs --fine-tune-last N (how many backbone blocks to unfreeze)");
  }
  if (o.early_stopping.patience < 0 || o.reduce_lr.patience < 0) throw UsageError("patience must not be negative");
  if (o.reduce_lr.factor <= 0 || o.reduce_lr.factor >= 1) throw UsageError("reduce_lr factor must be in (0, 1)");
}

bool monitor_higher_is_better(Monitor m) { return m == Monitor::accuracy || m == Monitor::val_accuracy; }

Monitor without_validation(Monitor m) {
  if (m == Monitor::val_loss) return Monitor::loss;
  if (m == Monitor::val_accuracy) return Monitor::accuracy;
  return m;
}

json to_json(const TrainOptions& o) {
  return {
      {"epochs", o.epochs},
      {"batch_size", o.batch_size},
      {"optimizer", enum_name(o.optimizer)},
      {"lr", o.lr},
      {"momentum", o.momentum},
      {"weight_decay", o.effective_weight_decay()},
      {"seed", o.seed},
      {"fine_tune_last", o.fine_tune_last},
      {"fine_tune_epochs", o.fine_tune_epochs},
      {"fine_tune_lr", o.fine_tune_lr},
      {"early_stopping",
       {{"enabled", o.early_stopping.enabled},
        {"monitor", enum_name(o.early_stopping.monitor)},
        {"patience", o.early_stopping.patience},
        {"min_delta", o.early_stopping.min_delta},
        {"restore_best_weights", o.early_stopping.restore_best_weights}}},
      {"reduce_lr",
       {{"enabled", o.reduce_lr.enabled},
        {"monitor", enum_name(o.reduce_lr.monitor)},
        {"factor", o.reduce_lr.factor},
        {"patience", o.reduce_lr.patience},
        {"min_lr", o.reduce_lr.min_lr},
        {"min_delta", o.reduce_lr.min_delta}}},
      {"keep", enum_name(o.keep)},
      {"best_monitor", enum_name(o.best_monitor)},
      {"feature_cache", enum_name(o.feature_cache)},
      {"threads", o.threads},
      {"channels_last", enum_name(o.channels_last)},
      {"precision", enum_name(o.precision)},
  };
}

TrainOptions train_options_from_json(const json& j) {
  TrainOptions o;
  apply_train_table(o, j, "run options");
  return o;
}

}  // namespace tabby
