#include "tabby/train/callbacks.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tabby {

BestTracker::BestTracker(std::string monitor, double min_delta)
    : monitor_(std::move(monitor)),
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

nlohmann::json BestTracker::state() const {
  return {{"best", std::isfinite(best_) ? nlohmann::json(best_) : nlohmann::json(nullptr)},
          {"best_epoch", best_epoch_},
          {"since_best", since_best_}};
}

void BestTracker::restore(const nlohmann::json& s) {
  if (s.contains("best") && s["best"].is_number()) best_ = s["best"].get<double>();
  best_epoch_ = s.value("best_epoch", 0);
  since_best_ = s.value("since_best", 0);
}

EarlyStopping::EarlyStopping(const EarlyStoppingOptions& options)
    : options_(options), tracker_(options.monitor, options.min_delta) {}

bool EarlyStopping::on_epoch_end(const EpochRecord& record) {
  improved_last_ = tracker_.update(record);
  return options_.enabled && tracker_.epochs_since_best() >= std::max(1, options_.patience);
}

nlohmann::json EarlyStopping::state() const { return tracker_.state(); }
void EarlyStopping::restore(const nlohmann::json& s) { tracker_.restore(s); }

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

nlohmann::json ReduceLrOnPlateau::state() const {
  nlohmann::json s = tracker_.state();
  s["wait"] = wait_;
  return s;
}

void ReduceLrOnPlateau::restore(const nlohmann::json& s) {
  tracker_.restore(s);
  wait_ = s.value("wait", 0);
}

}  // namespace tabby
