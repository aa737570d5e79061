#include "tabby/train/callbacks.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tabby {

BestTracker::BestTracker(Monitor monitor, double min_delta)
    : monitor_(monitor),
      min_delta_(std::abs(min_delta)),
      higher_better_(monitor_higher_is_better(monitor_)),
      best_(higher_better_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity()) {}

bool BestTracker::update(const EpochRecord& record) {
  const double v = record.metric(monitor_);
  bool improved = false;
  if (!std::isnan(v)) improved = higher_better_ ? v > best_ + min_delta_ : v < best_ - min_delta_;
  if (improved) {
    best_ = v;
    best_epoch_ = record.epoch;
    since_best_ = 0;
  } else {
    ++since_best_;
  }
  return improved;
}

MonitorState BestTracker::state() const {
  MonitorState s;
  if (std::isfinite(best_)) s.best = best_;
  s.best_epoch = best_epoch_;
  s.since_best = since_best_;
  return s;
}

void BestTracker::restore(const MonitorState& s) {
  if (s.best) best_ = *s.best;
  best_epoch_ = s.best_epoch;
  since_best_ = s.since_best;
}

EarlyStopping::EarlyStopping(const EarlyStoppingOptions& options)
    : options_(options), tracker_(options.monitor, options.min_delta) {}

bool EarlyStopping::on_epoch_end(const EpochRecord& record) {
  improved_last_ = tracker_.update(record);
  return options_.enabled && tracker_.epochs_since_best() >= std::max(1, options_.patience);
}

ReduceLrOnPlateau::ReduceLrOnPlateau(const ReduceLrOptions& options)
    : options_(options), tracker_(options.monitor, options.min_delta) {}

double ReduceLrOnPlateau::on_epoch_end(const EpochRecord& record, double current_lr) {
  if (!options_.enabled) return current_lr;
  if (tracker_.update(record)) {
    wait_ = 0;
    return current_lr;
  }
  if (++wait_ >= std::max(1, options_.patience)) {
    wait_ = 0;
    return std::max(current_lr * options_.factor, options_.min_lr);
  }
  return current_lr;
}

PlateauState ReduceLrOnPlateau::state() const { return {tracker_.state(), wait_}; }

void ReduceLrOnPlateau::restore(const PlateauState& s) {
  tracker_.restore(s.monitor);
  wait_ = s.wait;
}

}  // namespace tabby
