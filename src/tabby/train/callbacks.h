// Keras' training callbacks as small state machines, fed one epoch at a time.
// Their state is plain data (run/trainer_state.h) so a checkpoint can carry it
// and a resumed run behaves exactly like an uninterrupted one.
#pragma once

#include "tabby/config/train_options.h"
#include "tabby/run/history.h"
#include "tabby/run/trainer_state.h"

namespace tabby {

// Tracks the best value of a monitor (lower loss / higher accuracy).
class BestTracker {
 public:
  explicit BestTracker(Monitor monitor, double min_delta = 0.0);
  // True when `record` improves on the best so far (by more than min_delta).
  bool update(const EpochRecord& record);
  bool has_best() const { return best_epoch_ > 0; }
  double best() const { return best_; }
  int best_epoch() const { return best_epoch_; }
  int epochs_since_best() const { return since_best_; }
  Monitor monitor() const { return monitor_; }
  MonitorState state() const;
  void restore(const MonitorState& state);

 private:
  Monitor monitor_;
  double min_delta_;
  bool higher_better_;
  double best_;
  int best_epoch_ = 0;
  int since_best_ = 0;
};

// Keras EarlyStopping: stop when the monitor has not improved for `patience` epochs.
class EarlyStopping {
 public:
  explicit EarlyStopping(const EarlyStoppingOptions& options);
  // Returns true when training should stop after this epoch.
  bool on_epoch_end(const EpochRecord& record);
  bool improved_last() const { return improved_last_; }
  const BestTracker& tracker() const { return tracker_; }
  MonitorState state() const { return tracker_.state(); }
  void restore(const MonitorState& state) { tracker_.restore(state); }

 private:
  EarlyStoppingOptions options_;
  BestTracker tracker_;
  bool improved_last_ = false;
};

// Keras ReduceLROnPlateau: multiply the learning rate by `factor` after
// `patience` epochs without improvement, not below min_lr. (Keras' cooldown
// is 0 by default and not offered.)
class ReduceLrOnPlateau {
 public:
  explicit ReduceLrOnPlateau(const ReduceLrOptions& options);
  // Returns the learning rate to use from the next epoch on.
  double on_epoch_end(const EpochRecord& record, double current_lr);
  PlateauState state() const;
  void restore(const PlateauState& state);

 private:
  ReduceLrOptions options_;
  BestTracker tracker_;
  int wait_ = 0;
};

}  // namespace tabby
