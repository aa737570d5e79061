#include "tabby/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace tabby {

namespace {

constexpr double kWarmupStartFactor = 0.01;
constexpr double kOneCycleDefaultRise = 0.3;
constexpr double kOneCycleDivFactor = 25.0;
constexpr double kOneCycleFinalDivFactor = 1e4;
constexpr double kPi = 3.14159265358979323846;

double cosine_between(double start, double end, double fraction) {
  return end + (start - end) / 2.0 * (std::cos(kPi * fraction) + 1.0);
}

}  // namespace

LrSchedule::LrSchedule(Schedule kind, double warmup_steps, int64_t total_steps)
    : kind_(kind), warmup_(std::max(0.0, warmup_steps)), total_(std::max<int64_t>(1, total_steps)) {}

double LrSchedule::factor(int64_t step) const {
  const double s = static_cast<double>(step);
  if (kind_ == Schedule::one_cycle) {
    const double rise = warmup_ > 0 ? warmup_ : kOneCycleDefaultRise * static_cast<double>(total_);
    const double peak_step = rise - 1.0;
    const double last_step = static_cast<double>(total_ - 1);
    const double initial = 1.0 / kOneCycleDivFactor, final = initial / kOneCycleFinalDivFactor;
    if (s <= peak_step) return cosine_between(initial, 1.0, peak_step > 0 ? s / peak_step : 1.0);
    const double span = last_step - peak_step;
    return cosine_between(1.0, final, span > 0 ? std::min(1.0, (s - peak_step) / span) : 1.0);
  }
  // LinearLR's warmup counts whole steps; a fractional warmup ends at its ceiling.
  const double warmup_steps = std::ceil(warmup_);
  if (s < warmup_steps) return kWarmupStartFactor + (1.0 - kWarmupStartFactor) * s / warmup_steps;
  if (kind_ == Schedule::constant) return 1.0;
  const double span = static_cast<double>(total_) - warmup_steps;
  if (span <= 0) return 1.0;
  return cosine_between(1.0, 0.0, std::min(1.0, (s - warmup_steps) / span));
}

LrSchedule phase_schedule(const TrainOptions& o, int epochs, int64_t steps_per_epoch) {
  const int64_t total = static_cast<int64_t>(epochs) * steps_per_epoch;
  const double warmup = std::min(o.warmup_epochs * static_cast<double>(steps_per_epoch), static_cast<double>(total));
  return LrSchedule(o.schedule, warmup, total);
}

}  // namespace tabby
