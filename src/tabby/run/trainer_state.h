// The trainer's progress as a checkpoint carries it, beside the weights and
// the optimiser's state: where training stands (epoch, phase, history), the
// learning rate, every callback's memory, the fp16 loss scale, the collapse
// detector and the warnings already said. Typed, with one JSON form and a
// schema version, so a resumed run continues exactly where the killed one was.
//
// Schema history:
//   1  written before the state was typed (no "schema" key)
//   2  the same fields plus "schema": 2
//   3  plus state.ema_updates (the weight average's update count; 0: none)
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tabby/run/history.h"

namespace tabby {

// A tracked monitor: its best value so far (none before the first epoch with a
// value), the epoch of that value, and the epochs since it.
struct MonitorState {
  std::optional<double> best;
  int best_epoch = 0;
  int since_best = 0;
};

struct PlateauState {
  MonitorState monitor;
  int wait = 0;  // epochs without improvement since the last reduction
};

struct LossScalerState {
  bool enabled = false;
  double scale = 1.0;
  int good_steps = 0;
  int64_t skipped_steps = 0;
};

struct CollapseState {
  int one_class_since = 0;  // first epoch of the current streak of one-class predictions; 0: none
  int collapsed_epoch = 0;  // first epoch of the streak that was warned about; 0: none
};

inline bool operator==(const MonitorState& a, const MonitorState& b) {
  return a.best == b.best && a.best_epoch == b.best_epoch && a.since_best == b.since_best;
}
inline bool operator==(const PlateauState& a, const PlateauState& b) {
  return a.monitor == b.monitor && a.wait == b.wait;
}
inline bool operator==(const LossScalerState& a, const LossScalerState& b) {
  return a.enabled == b.enabled && a.scale == b.scale && a.good_steps == b.good_steps &&
         a.skipped_steps == b.skipped_steps;
}
inline bool operator==(const CollapseState& a, const CollapseState& b) {
  return a.one_class_since == b.one_class_since && a.collapsed_epoch == b.collapsed_epoch;
}

struct TrainerState {
  static constexpr int kSchema = 3;
  int epochs_done = 0;
  TrainPhase phase = TrainPhase::train;
  std::vector<EpochRecord> history;
  double lr = 0;  // for the next epoch
  MonitorState best;            // by the run's best_monitor
  MonitorState early_stopping;  // of the phase
  PlateauState reduce_lr;       // of the phase
  LossScalerState loss_scaler;
  CollapseState collapse;
  std::vector<std::string> warnings;  // said so far
  int64_t ema_updates = 0;            // updates of the weight average in the checkpoint (train/ema.h)
};

nlohmann::json to_json(const TrainerState& state);
// tabby::Error naming `source` for a later schema or a malformed state.
TrainerState trainer_state_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace tabby
