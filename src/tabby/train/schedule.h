// Learning-rate schedules within a phase, stepped per batch, as closed forms
// of the step so a resumed run continues on the same curve. Each matches the
// PyTorch scheduler a user would reach for (a test compares the curves):
//   warmup     LinearLR(start_factor=0.01, total_iters=W) — torchvision's
//              classification reference; W = warmup_epochs * steps per epoch
//   constant   1 after the warmup
//   cosine     SequentialLR(warmup, CosineAnnealingLR(T_max=N-W, eta_min=0))
//   one_cycle  OneCycleLR(max_lr=lr, total_steps=N, pct_start=p, cos,
//              div_factor=25, final_div_factor=1e4), p = warmup_epochs /
//              epochs of the phase when a warmup is given, else 0.3
#pragma once

#include <cstdint>

#include "tabby/config/train_options.h"

namespace tabby {

class LrSchedule {
 public:
  // `warmup_steps` may be fractional; `total_steps` >= 1.
  LrSchedule(Schedule kind, double warmup_steps, int64_t total_steps);
  // The factor of the base learning rate for 0-based step `step` of the phase.
  double factor(int64_t step) const;
  Schedule kind() const { return kind_; }

 private:
  Schedule kind_;
  double warmup_;
  int64_t total_;
};

// The schedule of a phase of `epochs` epochs of `steps_per_epoch` steps.
LrSchedule phase_schedule(const TrainOptions& options, int epochs, int64_t steps_per_epoch);

}  // namespace tabby
