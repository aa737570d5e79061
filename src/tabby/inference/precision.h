// Mixed precision for training and evaluation: which floating-point type the
// forward pass computes in (autocast), and the dynamic loss scaling that keeps
// fp16 gradients from underflowing.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "tabby/config/train_options.h"
#include "tabby/run/trainer_state.h"

namespace tabby {

enum class Precision { fp32, bf16, fp16 };

// The compute type for `device`. auto: bf16 on CUDA (tensor cores, no loss
// scaling needed), fp32 on the CPU (most CPUs have no fast bf16 path). fp16 on
// the CPU is a UsageError: LibTorch autocasts the CPU to bf16 only.
Precision resolve_precision(PrecisionChoice choice, const torch::Device& device);
std::string precision_name(Precision p);

// Autocast to `precision` on `device` while it lives (nothing for fp32), and
// the previous state after; the cast-weight cache is cleared on leaving the
// outermost scope.
class AutocastScope {
 public:
  AutocastScope(Precision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Float;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
};

struct LossScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int growth_interval = 2000;  // finite steps in a row before the scale grows
  double min_scale = 1.0;
};

// Dynamic loss scaling (what torch.cuda.amp.GradScaler does): the loss is
// multiplied by a large scale before backward so small fp16 gradients do not
// flush to zero; gradients are divided back before the optimizer step; a step
// whose gradients hold inf/NaN is skipped and the scale halves; after
// `growth_interval` good steps it doubles. Disabled, it changes nothing.
class LossScaler {
 public:
  explicit LossScaler(bool enabled, LossScalerOptions options = {});

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t skipped_steps() const { return skipped_; }

  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  // Divides the gradients of `params` by the scale in place; true when every
  // gradient is finite (the optimizer may step).
  bool unscale_and_check(const std::vector<torch::Tensor>& params) const;
  // After each step: `finite` as unscale_and_check returned.
  void update(bool finite);
  // After backward: unscales, steps `optimizer` when every gradient is finite,
  // updates the scale; true when it stepped.
  bool step(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& params);

  LossScalerState state() const;
  void restore(const LossScalerState& state);

 private:
  bool enabled_;
  LossScalerOptions options_;
  double scale_;
  int good_steps_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace tabby
