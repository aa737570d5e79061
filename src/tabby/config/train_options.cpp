#include "tabby/config/train_options.h"

#include <limits>
#include <set>

#include "tabby/util/error.h"

namespace tabby {

namespace {

const std::set<std::string> kMonitors = {"val_loss", "val_accuracy", "loss", "accuracy"};

// Whether an integer JSON value fits T: a negative seed or an epoch count
// beyond int must not wrap around silently.
template <typename T>
bool integer_fits(const nlohmann::json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  const int64_t i = v.get<int64_t>();
  if constexpr (std::is_unsigned_v<T>) {
    return i >= 0 && static_cast<uint64_t>(i) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  } else {
    return i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
           i <= static_cast<int64_t>(std::numeric_limits<T>::max());
  }
}

template <typename T>
T read(const nlohmann::json& table, const std::string& key, const std::string& source) {
  const auto& v = table.at(key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    if (v.is_number_integer() && !integer_fits<T>(v)) {
      throw Error(source + ": `" + key + "` = " + v.dump() + " is out of range",
                  "use an integer from " + std::to_string(std::numeric_limits<T>::min()) + " to " +
                      std::to_string(std::numeric_limits<T>::max()));
    }
  }
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) throw std::invalid_argument("bool");
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) throw std::invalid_argument("int");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) throw std::invalid_argument("number");
    } else {
      if (!v.is_string()) throw std::invalid_argument("string");
    }
    return v.get<T>();
  } catch (const std::exception&) {
    const char* kind = std::is_same_v<T, bool>           ? "true or false"
                       : std::is_integral_v<T>           ? "an integer"
                       : std::is_floating_point_v<T>     ? "a number"
                                                         : "a string";
    throw Error(source + ": `" + key + "` must be " + kind);
  }
}

void apply_early_stopping(EarlyStoppingOptions& es, const nlohmann::json& t, const std::string& source) {
  es.enabled = true;
  if (t.is_boolean()) {
    es.enabled = t.get<bool>();
    return;
  }
  if (!t.is_object()) throw Error(source + ": `early_stopping` must be true/false or a table");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    if (k == "monitor") es.monitor = read<std::string>(t, k, source);
    else if (k == "patience") es.patience = read<int>(t, k, source);
    else if (k == "min_delta") es.min_delta = read<double>(t, k, source);
    else if (k == "restore_best_weights") es.restore_best_weights = read<bool>(t, k, source);
    else if (k == "enabled") es.enabled = read<bool>(t, k, source);
    else throw Error(source + ": early_stopping: unknown key '" + k + "'", "use monitor, patience, min_delta, restore_best_weights");
  }
}

void apply_reduce_lr(ReduceLrOptions& r, const nlohmann::json& t, const std::string& source) {
  r.enabled = true;
  if (t.is_boolean()) {
    r.enabled = t.get<bool>();
    return;
  }
  if (!t.is_object()) throw Error(source + ": `reduce_lr` must be true/false or a table");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    if (k == "monitor") r.monitor = read<std::string>(t, k, source);
    else if (k == "factor") r.factor = read<double>(t, k, source);
    else if (k == "patience") r.patience = read<int>(t, k, source);
    else if (k == "min_lr") r.min_lr = read<double>(t, k, source);
    else if (k == "min_delta") r.min_delta = read<double>(t, k, source);
    else if (k == "enabled") r.enabled = read<bool>(t, k, source);
    else throw Error(source + ": reduce_lr: unknown key '" + k + "'", "use monitor, factor, patience, min_lr, min_delta");
  }
}

}  // namespace

double TrainOptions::effective_weight_decay() const {
  if (weight_decay >= 0) return weight_decay;
  return optimizer == "adamw" ? 0.01 : 0.0;
}

void apply_train_table(TrainOptions& o, const nlohmann::json& t, const std::string& source) {
  if (t.is_null()) return;
  if (!t.is_object()) throw Error(source + ": [train] must be a table");
  for (auto it = t.begin(); it != t.end(); ++it) {
    const std::string& k = it.key();
    if (k == "epochs") o.epochs = read<int>(t, k, source);
    else if (k == "batch_size") o.batch_size = read<int64_t>(t, k, source);
    else if (k == "optimizer") o.optimizer = read<std::string>(t, k, source);
    else if (k == "lr" || k == "learning_rate") o.lr = read<double>(t, k, source);
    else if (k == "momentum") o.momentum = read<double>(t, k, source);
    else if (k == "weight_decay") o.weight_decay = read<double>(t, k, source);
    else if (k == "seed") o.seed = read<uint64_t>(t, k, source);
    else if (k == "fine_tune_last") o.fine_tune_last = read<int>(t, k, source);
    else if (k == "fine_tune_epochs") o.fine_tune_epochs = read<int>(t, k, source);
    else if (k == "fine_tune_lr") o.fine_tune_lr = read<double>(t, k, source);
    else if (k == "early_stopping") apply_early_stopping(o.early_stopping, it.value(), source);
    else if (k == "reduce_lr") apply_reduce_lr(o.reduce_lr, it.value(), source);
    else if (k == "keep") o.keep = read<std::string>(t, k, source);
    else if (k == "best_monitor") o.best_monitor = read<std::string>(t, k, source);
    else if (k == "feature_cache") o.feature_cache = read<std::string>(t, k, source);
    else if (k == "threads") o.threads = read<int>(t, k, source);
    else if (k == "channels_last") o.channels_last = read<std::string>(t, k, source);
    else if (k == "precision") o.precision = read<std::string>(t, k, source);
    // Data settings may sit in [train] too; the caller reads them.
    else if (k == "image_size" || k == "crop_to_aspect") continue;
    else {
      throw Error(source + ": [train] has an unknown key '" + k + "'",
                  "known: epochs, batch_size, optimizer, lr, momentum, weight_decay, seed, fine_tune_last, "
                  "fine_tune_epochs, fine_tune_lr, early_stopping, reduce_lr, keep, best_monitor, feature_cache, "
                  "threads, channels_last, precision, image_size, crop_to_aspect");
    }
  }
}

void validate(const TrainOptions& o) {
  if (o.epochs < 1) throw UsageError("--epochs must be at least 1");
  if (o.batch_size < 1 || o.batch_size > 65536) throw UsageError("--batch-size must be between 1 and 65536");
  if (o.optimizer != "adam" && o.optimizer != "adamw" && o.optimizer != "sgd") {
    throw UsageError("--optimizer " + o.optimizer + ": unknown optimizer", "use adam, adamw or sgd");
  }
  if (!(o.lr > 0) || o.lr > 10) throw UsageError("--lr must be in (0, 10]", "typical values are 1e-5 to 1e-2");
  if (o.momentum < 0 || o.momentum >= 1) throw UsageError("--momentum must be in [0, 1)");
  if (o.fine_tune_epochs < 0) throw UsageError("--fine-tune-epochs must not be negative");
  if (o.fine_tune_epochs > 0 && !(o.fine_tune_lr > 0)) throw UsageError("--fine-tune-lr must be positive");
  if (o.fine_tune_epochs > 0 && o.fine_tune_last == 0) {
    throw UsageError("--fine-tune-epochs needs --fine-tune-last N (how many backbone blocks to unfreeze)");
  }
  for (const auto* m : {&o.early_stopping.monitor, &o.reduce_lr.monitor, &o.best_monitor}) {
    if (!kMonitors.count(*m)) throw UsageError("unknown monitor '" + *m + "'", "use val_loss, val_accuracy, loss or accuracy");
  }
  if (o.early_stopping.patience < 0 || o.reduce_lr.patience < 0) throw UsageError("patience must not be negative");
  if (o.reduce_lr.factor <= 0 || o.reduce_lr.factor >= 1) throw UsageError("reduce_lr factor must be in (0, 1)");
  if (o.keep != "last" && o.keep != "best") throw UsageError("--keep must be last or best");
  if (o.feature_cache != "auto" && o.feature_cache != "on" && o.feature_cache != "off") {
    throw UsageError("--feature-cache must be auto, on or off");
  }
  if (o.channels_last != "auto" && o.channels_last != "on" && o.channels_last != "off") {
    throw UsageError("--channels-last must be auto, on or off");
  }
  if (o.precision != "auto" && o.precision != "fp32" && o.precision != "bf16" && o.precision != "fp16") {
    throw UsageError("--precision " + o.precision + ": unknown precision", "use auto, fp32, bf16 or fp16");
  }
}

bool monitor_higher_is_better(const std::string& monitor) { return monitor.find("accuracy") != std::string::npos; }

nlohmann::json to_json(const TrainOptions& o) {
  return {
      {"epochs", o.epochs},
      {"batch_size", o.batch_size},
      {"optimizer", o.optimizer},
      {"lr", o.lr},
      {"momentum", o.momentum},
      {"weight_decay", o.effective_weight_decay()},
      {"seed", o.seed},
      {"fine_tune_last", o.fine_tune_last},
      {"fine_tune_epochs", o.fine_tune_epochs},
      {"fine_tune_lr", o.fine_tune_lr},
      {"early_stopping",
       {{"enabled", o.early_stopping.enabled},
        {"monitor", o.early_stopping.monitor},
        {"patience", o.early_stopping.patience},
        {"min_delta", o.early_stopping.min_delta},
        {"restore_best_weights", o.early_stopping.restore_best_weights}}},
      {"reduce_lr",
       {{"enabled", o.reduce_lr.enabled},
        {"monitor", o.reduce_lr.monitor},
        {"factor", o.reduce_lr.factor},
        {"patience", o.reduce_lr.patience},
        {"min_lr", o.reduce_lr.min_lr},
        {"min_delta", o.reduce_lr.min_delta}}},
      {"keep", o.keep},
      {"best_monitor", o.best_monitor},
      {"feature_cache", o.feature_cache},
      {"threads", o.threads},
      {"channels_last", o.channels_last},
      {"precision", o.precision},
  };
}

TrainOptions train_options_from_json(const nlohmann::json& j) {
  TrainOptions o;
  apply_train_table(o, j, "run options");
  return o;
}

}  // namespace tabby
