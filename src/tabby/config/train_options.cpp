#include "tabby/config/train_options.h"

#include <type_traits>

#include <fmt/format.h>

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

// One option: its definition from the key, the field it sets, and how it reads and writes.
template <typename Access>
TrainOptionDef option(std::string key, std::string flag, std::string group, std::string help, Access access) {
  using T = std::decay_t<decltype(access(std::declval<TrainOptions&>()))>;
  TrainOptionDef d;
  d.key = key;
  d.flag = std::move(flag);
  d.group = std::move(group);
  d.help = std::move(help);
  if constexpr (std::is_same_v<T, bool>) d.kind = OptionKind::boolean;
  else if constexpr (std::is_integral_v<T>) d.kind = OptionKind::integer;
  else if constexpr (std::is_floating_point_v<T>) d.kind = OptionKind::number;
  else d.kind = OptionKind::word;
  // Errors name the key as written in its table ("patience", not "early_stopping.patience").
  const std::string short_key = key.substr(key.find('.') == std::string::npos ? 0 : key.find('.') + 1);
  d.set = [access, short_key](TrainOptions& o, const json& value, const std::string& source) {
    if constexpr (std::is_enum_v<T>) {
      const std::string word = json_fields::as<std::string>(value, short_key, source);
      if (auto parsed = enum_from_name<T>(word)) access(o) = *parsed;
      else throw unknown_choice<T>(short_key, word);
    } else {
      access(o) = json_fields::as<T>(value, short_key, source);
    }
  };
  d.get = [access](const TrainOptions& o) -> json {
    const T& v = access(const_cast<TrainOptions&>(o));
    if constexpr (std::is_enum_v<T>) return enum_name(v);
    else return v;
  };
  return d;
}

TrainOptionDef with_range(TrainOptionDef d, double lo, double hi) {
  d.range = std::make_pair(lo, hi);
  return d;
}

TrainOptionDef flag_sets(TrainOptionDef d, bool value) {
  d.flag_value = value;
  return d;
}

#define TABBY_FIELD(member) [](TrainOptions& o) -> auto& { return o.member; }

std::vector<TrainOptionDef> make_defs() {
  const char* training = "Training";
  const char* schedule = "Schedule";
  const char* regularise = "Regularisation";
  const char* callbacks = "Callbacks";
  std::vector<TrainOptionDef> defs = {
      option("epochs", "--epochs", training, "Epochs (default: the model's, else 10)", TABBY_FIELD(epochs)),
      option("batch_size", "--batch-size", training, "Batch size (default 32)", TABBY_FIELD(batch_size)),
      option("optimizer", "--optimizer", training, "adam, adamw or sgd (default adam)", TABBY_FIELD(optimizer)),
      option("lr", "--lr", training, "Learning rate (default 0.001)", TABBY_FIELD(lr)),
      option("momentum", "--momentum", training, "SGD momentum (default 0)", TABBY_FIELD(momentum)),
      option("weight_decay", "--weight-decay", training, "Weight decay (default 0; 0.01 for adamw)",
             TABBY_FIELD(weight_decay)),
      option("seed", "--seed", training,
             "Seed for splits, shuffling, augmentation and initialisation (default 1337)", TABBY_FIELD(seed)),
      option("fine_tune_last", "--fine-tune-last", training,
             "After the first phase, unfreeze the backbone's last N blocks (-1: all)", TABBY_FIELD(fine_tune_last)),
      option("fine_tune_epochs", "--fine-tune-epochs", training, "Epochs of the fine-tuning phase",
             TABBY_FIELD(fine_tune_epochs)),
      option("fine_tune_lr", "--fine-tune-lr", training, "Learning rate of the fine-tuning phase (default 1e-5)",
             TABBY_FIELD(fine_tune_lr)),
      option("keep", "--keep", training,
             "Weights to keep at the end: last or best (the best epoch by --best-monitor)", TABBY_FIELD(keep)),
      option("best_monitor", "--best-monitor", training,
             "Metric that picks the best epoch: val_accuracy (default), val_loss, accuracy, loss",
             TABBY_FIELD(best_monitor)),
      option("feature_cache", "--feature-cache", training,
             "auto|on|off: compute a frozen backbone's features once (auto: when exact)", TABBY_FIELD(feature_cache)),
      option("threads", "", training, "CPU threads (0: all cores)", TABBY_FIELD(threads)),
      option("channels_last", "--channels-last", training,
             "auto|on|off: channels-last memory layout for images and conv weights (auto: on)",
             TABBY_FIELD(channels_last)),
      option("precision", "--precision", training,
             "auto|fp32|bf16|fp16: compute type of the forward pass (auto: bf16 on CUDA, fp32 on CPU; fp16 uses "
             "dynamic loss scaling, CUDA only)",
             TABBY_FIELD(precision)),
      option("schedule", "--schedule", schedule,
             "Learning rate within each phase, stepped per batch: constant (default), cosine (to zero) or one_cycle",
             TABBY_FIELD(schedule)),
      with_range(option("warmup_epochs", "--warmup-epochs", schedule,
                        "Linear warmup from 1 % of the rate over this many epochs of each phase (fractions allowed)",
                        TABBY_FIELD(warmup_epochs)),
                 0, 1e6),
      with_range(option("backbone_lr_ratio", "--backbone-lr-ratio", schedule,
                        "The backbone trains at this fraction of the learning rate (default 1)",
                        TABBY_FIELD(backbone_lr_ratio)),
                 0, 1),
      with_range(option("layer_decay", "--layer-decay", schedule,
                        "Each backbone block trains at this fraction of the rate of the block above it (default 1)",
                        TABBY_FIELD(layer_decay)),
                 0, 1),
      with_range(option("label_smoothing", "--label-smoothing", regularise,
                        "Label smoothing of the cross-entropy targets, as PyTorch's (e.g. 0.1)",
                        TABBY_FIELD(label_smoothing)),
                 0, 0.99),
      with_range(option("mixup", "--mixup", regularise, "Mixup with Beta(a, a) weights, e.g. 0.2 (0: off)",
                        TABBY_FIELD(mixup)),
                 0, 100),
      with_range(option("cutmix", "--cutmix", regularise,
                        "CutMix with Beta(a, a) areas, e.g. 1.0 (0: off; with --mixup, one of the two per batch)",
                        TABBY_FIELD(cutmix)),
                 0, 100),
      with_range(option("ema", "--ema", regularise,
                        "Keep an exponential moving average of the weights with this decay (e.g. 0.999), used for "
                        "validation, the kept weights and export (0: off)",
                        TABBY_FIELD(ema)),
                 0, 0.999999),
      option("augment", "--augment", regularise,
             "Batch augmentation before the model, e.g. 'flip,rotation=0.1' (see tabby inspect --augment)",
             TABBY_FIELD(augment)),
      option("recipe", "", training, "A recipe (config/recipes.h) applied over the model file's [train] table",
             TABBY_FIELD(recipe)),
      option("early_stopping", "--early-stopping", callbacks,
             "Stop when --monitor stops improving (restores the best weights)", TABBY_FIELD(early_stopping.enabled)),
      option("early_stopping.monitor", "--monitor", callbacks,
             "Metric for early stopping: val_loss (default), val_accuracy, loss, accuracy (implies --early-stopping)",
             TABBY_FIELD(early_stopping.monitor)),
      option("early_stopping.patience", "--patience", callbacks,
             "Early-stopping patience in epochs (default 3; implies --early-stopping)",
             TABBY_FIELD(early_stopping.patience)),
      option("early_stopping.min_delta", "--min-delta", callbacks,
             "Smallest change of --monitor that counts as an improvement (default 0; implies --early-stopping)",
             TABBY_FIELD(early_stopping.min_delta)),
      flag_sets(option("early_stopping.restore_best_weights", "--no-restore-best", callbacks,
                       "When early stopping ends training, keep the last weights instead of the best (implies "
                       "--early-stopping)",
                       TABBY_FIELD(early_stopping.restore_best_weights)),
                false),
      option("reduce_lr", "--reduce-lr", callbacks, "Reduce the learning rate on a plateau of val_loss",
             TABBY_FIELD(reduce_lr.enabled)),
      option("reduce_lr.monitor", "", callbacks, "Metric of the plateau (default val_loss)",
             TABBY_FIELD(reduce_lr.monitor)),
      option("reduce_lr.factor", "--reduce-lr-factor", callbacks,
             "Factor for --reduce-lr (default 0.2; implies --reduce-lr)", TABBY_FIELD(reduce_lr.factor)),
      option("reduce_lr.patience", "--reduce-lr-patience", callbacks,
             "Patience for --reduce-lr (default 2; implies --reduce-lr)", TABBY_FIELD(reduce_lr.patience)),
      option("reduce_lr.min_lr", "--min-lr", callbacks, "Lower bound for --reduce-lr (default 0; implies --reduce-lr)",
             TABBY_FIELD(reduce_lr.min_lr)),
      option("reduce_lr.min_delta", "", callbacks, "Smallest improvement of the plateau's metric (default 1e-4)",
             TABBY_FIELD(reduce_lr.min_delta)),
  };
  // run.json has always recorded the weight decay in effect, not the "optimiser's default" marker.
  for (auto& d : defs) {
    if (d.key == "weight_decay") d.get = [](const TrainOptions& o) -> json { return o.effective_weight_decay(); };
  }
  return defs;
}

#undef TABBY_FIELD

bool is_table_option(const std::string& key) { return key == "early_stopping" || key == "reduce_lr"; }

// The keys of `table` (say "early_stopping") other than its own switch.
std::vector<std::string> keys_under(const std::string& table) {
  std::vector<std::string> keys;
  for (const auto& d : train_option_defs()) {
    if (d.key.rfind(table + ".", 0) == 0) keys.push_back(d.key.substr(table.size() + 1));
  }
  return keys;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

// `early_stopping = true`, or a table of its keys (which switches it on unless it says `enabled = false`).
void apply_table_option(TrainOptions& o, const TrainOptionDef& def, const json& value, const std::string& source) {
  if (value.is_boolean()) {
    def.set(o, value, source);
    return;
  }
  if (!value.is_object()) throw Error(source + ": `" + def.key + "` must be true/false or a table");
  def.set(o, true, source);
  for (auto it = value.begin(); it != value.end(); ++it) {
    const std::string& k = it.key();
    const TrainOptionDef* sub = k == "enabled" ? &def : find_train_option(def.key + "." + k);
    if (!sub) {
      throw Error(source + ": " + def.key + ": unknown key '" + k + "'", "use " + joined(keys_under(def.key)));
    }
    sub->set(o, it.value(), source);
  }
}

// One [train] key; false when the key is not an option.
bool apply_key(TrainOptions& o, const json& t, const std::string& key, const std::string& source) {
  const std::string k = key == "learning_rate" ? "lr" : key;  // Keras' name
  const TrainOptionDef* def = k.find('.') == std::string::npos ? find_train_option(k) : nullptr;
  if (!def) return false;
  if (is_table_option(k)) apply_table_option(o, *def, t.at(key), source);
  else def->set(o, t.at(key), source);
  return true;
}

std::string range_text(double v) { return fmt::format("{}", v); }

}  // namespace

const std::vector<TrainOptionDef>& train_option_defs() {
  static const std::vector<TrainOptionDef> defs = make_defs();
  return defs;
}

const TrainOptionDef* find_train_option(const std::string& key) {
  for (const auto& d : train_option_defs()) {
    if (d.key == key) return &d;
  }
  return nullptr;
}

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
    std::vector<std::string> known;
    for (const auto& d : train_option_defs()) {
      if (d.key.find('.') == std::string::npos) known.push_back(d.key);
    }
    known.push_back("image_size");
    known.push_back("crop_to_aspect");
    throw Error(source + ": [train] has an unknown key '" + k + "'", "known: " + joined(known));
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
  for (const auto& d : train_option_defs()) {
    if (!d.range) continue;
    const double v = d.get(o).get<double>();
    if (v < d.range->first || v > d.range->second) {
      throw UsageError(fmt::format("{} must be between {} and {}, got {}", d.flag.empty() ? d.key : d.flag,
                                   range_text(d.range->first), range_text(d.range->second), v));
    }
  }
  if (o.schedule != Schedule::constant && o.reduce_lr.enabled) {
    throw UsageError("--reduce-lr and --schedule " + std::string(enum_name(o.schedule)) +
                         " both set the learning rate",
                     "use one of the two");
  }
  if (o.fine_tune_last < -1) throw UsageError("--fine-tune-last must be -1 (all blocks) or a number of blocks");
}

bool monitor_higher_is_better(Monitor m) { return m == Monitor::accuracy || m == Monitor::val_accuracy; }

Monitor without_validation(Monitor m) {
  if (m == Monitor::val_loss) return Monitor::loss;
  if (m == Monitor::val_accuracy) return Monitor::accuracy;
  return m;
}

json to_json(const TrainOptions& o) {
  json j = json::object();
  for (const auto& d : train_option_defs()) {
    const auto dot = d.key.find('.');
    if (dot != std::string::npos) {
      j[d.key.substr(0, dot)][d.key.substr(dot + 1)] = d.get(o);
    } else if (is_table_option(d.key)) {
      j[d.key]["enabled"] = d.get(o);
    } else {
      j[d.key] = d.get(o);
    }
  }
  return j;
}

TrainOptions train_options_from_json(const json& j) {
  TrainOptions o;
  apply_train_table(o, j, "run options");
  return o;
}

}  // namespace tabby
