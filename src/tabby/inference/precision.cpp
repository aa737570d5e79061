#include "tabby/inference/precision.h"

#include <cmath>

#include <atomic>

#include "tabby/util/cpu_features.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/torch_compat.h"

namespace tabby {

Precision resolve_precision(PrecisionChoice choice, const torch::Device& device) {
  switch (choice) {
    case PrecisionChoice::automatic: return device.is_cuda() ? Precision::bf16 : Precision::fp32;
    case PrecisionChoice::fp32: return Precision::fp32;
    case PrecisionChoice::bf16: {
      static std::atomic<bool> warned{false};
      if (!device.is_cuda() && !cpu_has_native_bf16() && !warned.exchange(true)) {
        log::warn("this CPU has no native bfloat16 (no AVX512-BF16 or AMX): LibTorch emulates bf16 here, "
                  "many times slower than fp32 (MobileNetV2: 34x slower, measured on an AVX2 CPU)",
                  "use --precision fp32 (the default) on this machine");
      }
      return Precision::bf16;
    }
    case PrecisionChoice::fp16: break;
  }
  if (!device.is_cuda()) {
    throw UsageError("--precision fp16 needs a CUDA device", "on the CPU use bf16 or fp32 (the default)");
  }
  return Precision::fp16;
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::bf16: return "bf16";
    case Precision::fp16: return "fp16";
    case Precision::fp32: break;
  }
  return "fp32";
}

AutocastScope::AutocastScope(Precision precision, const torch::Device& device) {
  if (precision == Precision::fp32) return;
  active_ = true;
  device_type_ = device.is_cuda() ? c10::DeviceType::CUDA : c10::DeviceType::CPU;
  was_enabled_ = torch_compat::autocast_enabled(device_type_);
  previous_dtype_ = torch_compat::autocast_dtype(device_type_);
  torch_compat::set_autocast_dtype(device_type_,
                                   precision == Precision::bf16 ? c10::ScalarType::BFloat16 : c10::ScalarType::Half);
  torch_compat::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  torch_compat::set_autocast_enabled(device_type_, was_enabled_);
  torch_compat::set_autocast_dtype(device_type_, previous_dtype_);
}

LossScaler::LossScaler(bool enabled, LossScalerOptions options)
    : enabled_(enabled), options_(options), scale_(enabled ? options.init_scale : 1.0) {}

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const {
  return enabled_ ? loss * scale_ : loss;
}

bool LossScaler::unscale_and_check(const std::vector<torch::Tensor>& params) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  const double inverse = 1.0 / scale_;
  std::vector<torch::Tensor> all_finite;  // one flag per gradient, read back once (one device sync per step)
  for (const auto& p : params) {
    auto g = p.grad();
    if (!g.defined()) continue;
    g.mul_(inverse);
    all_finite.push_back(torch::isfinite(g).all());
  }
  return all_finite.empty() || torch::stack(all_finite).all().item<bool>();
}

void LossScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ = std::max(options_.min_scale, scale_ * options_.backoff_factor);
    good_steps_ = 0;
    ++skipped_;
    return;
  }
  if (++good_steps_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
}

bool LossScaler::step(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& params) {
  const bool finite = unscale_and_check(params);
  if (finite) optimizer.step();
  update(finite);
  return finite;
}

LossScalerState LossScaler::state() const { return {enabled_, scale_, good_steps_, skipped_}; }

void LossScaler::restore(const LossScalerState& state) {
  if (!enabled_ || !state.enabled) return;
  scale_ = state.scale > 0 && std::isfinite(state.scale) ? state.scale : options_.init_scale;
  good_steps_ = state.good_steps;
  skipped_ = state.skipped_steps;
}

}  // namespace tabby
