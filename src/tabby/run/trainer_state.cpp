#include "tabby/run/trainer_state.h"

#include "tabby/util/error.h"
#include "tabby/util/json_fields.h"

namespace tabby {

namespace {

using nlohmann::json;
namespace jf = json_fields;

json monitor_json(const MonitorState& m) {
  return {{"best", m.best ? json(*m.best) : json(nullptr)}, {"best_epoch", m.best_epoch}, {"since_best", m.since_best}};
}

MonitorState monitor_from_json(const json& j, const std::string& source) {
  MonitorState m;
  if (j.contains("best") && !j["best"].is_null()) m.best = jf::required<double>(j, "best", source);
  m.best_epoch = jf::optional<int>(j, "best_epoch", 0, source);
  m.since_best = jf::optional<int>(j, "since_best", 0, source);
  return m;
}

}  // namespace

json to_json(const TrainerState& s) {
  json plateau = monitor_json(s.reduce_lr.monitor);
  plateau["wait"] = s.reduce_lr.wait;
  const json state = {{"lr", s.lr},
                      {"best", monitor_json(s.best)},
                      {"early_stopping", monitor_json(s.early_stopping)},
                      {"reduce_lr", plateau},
                      {"loss_scaler",
                       {{"enabled", s.loss_scaler.enabled},
                        {"scale", s.loss_scaler.scale},
                        {"good_steps", s.loss_scaler.good_steps},
                        {"skipped_steps", s.loss_scaler.skipped_steps}}},
                      {"warnings", s.warnings},
                      {"ema_updates", s.ema_updates},
                      {"collapse",
                       {{"one_class_since", s.collapse.one_class_since},
                        {"collapsed_epoch", s.collapse.collapsed_epoch}}}};
  return {{"schema", TrainerState::kSchema},
          {"epochs_done", s.epochs_done},
          {"phase", enum_name(s.phase)},
          {"history", history_to_json(s.history)},
          {"state", state}};
}

TrainerState trainer_state_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": the trainer state is not a JSON object");
  const int schema = jf::optional<int>(j, "schema", 1, source);
  if (schema > TrainerState::kSchema) {
    throw Error(source + " was written by a newer tabby (trainer state schema " + std::to_string(schema) + ")",
                "resume it with that tabby, or upgrade");
  }
  TrainerState s;
  s.epochs_done = jf::required<int>(j, "epochs_done", source);
  const std::string phase = jf::required<std::string>(j, "phase", source);
  const auto parsed = enum_from_name<TrainPhase>(phase);
  if (!parsed) throw Error(source + ": unknown training phase '" + phase + "'");
  s.phase = *parsed;
  if (!j.contains("history")) throw Error(source + ": `history` is missing");
  s.history = history_from_json(j.at("history"), source + " history");
  if (!j.contains("state")) throw Error(source + ": `state` is missing");
  const json& state = jf::object(j, "state", source);
  s.lr = jf::optional<double>(state, "lr", 0.0, source);
  s.best = monitor_from_json(jf::object(state, "best", source), source + " best");
  s.early_stopping = monitor_from_json(jf::object(state, "early_stopping", source), source + " early_stopping");
  const json& plateau = jf::object(state, "reduce_lr", source);
  s.reduce_lr.monitor = monitor_from_json(plateau, source + " reduce_lr");
  s.reduce_lr.wait = jf::optional<int>(plateau, "wait", 0, source + " reduce_lr");
  const json& scaler = jf::object(state, "loss_scaler", source);
  s.loss_scaler.enabled = jf::optional<bool>(scaler, "enabled", false, source);
  s.loss_scaler.scale = jf::optional<double>(scaler, "scale", 1.0, source);
  s.loss_scaler.good_steps = jf::optional<int>(scaler, "good_steps", 0, source);
  s.loss_scaler.skipped_steps = jf::optional<int64_t>(scaler, "skipped_steps", 0, source);
  s.ema_updates = jf::optional<int64_t>(state, "ema_updates", 0, source);
  const json& collapse = jf::object(state, "collapse", source);
  s.collapse.one_class_since = jf::optional<int>(collapse, "one_class_since", 0, source);
  s.collapse.collapsed_epoch = jf::optional<int>(collapse, "collapsed_epoch", 0, source);
  s.warnings = jf::optional<std::vector<std::string>>(state, "warnings", {}, source);
  return s;
}

}  // namespace tabby
