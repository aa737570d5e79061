#include "tabby/train/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cmath>

#include "tabby/util/error.h"

// LibTorch 2.4 replaced the per-backend autocast switches with ones taking a
// device type; Debian's 1.13 has only the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define TABBY_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define TABBY_AUTOCAST_BY_DEVICE_TYPE 0
#endif

namespace tabby {

namespace {

bool autocast_enabled(c10::DeviceType type) {
#if TABBY_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void set_autocast(c10::DeviceType type, bool enabled) {
#if TABBY_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

c10::ScalarType autocast_dtype(c10::DeviceType type) {
#if TABBY_AUTOCAST_BY_DEVICE_TYPE
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

void set_autocast_dtype(c10::DeviceType type, c10::ScalarType dtype) {
#if TABBY_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

}  // namespace

Precision resolve_precision(PrecisionChoice choice, const torch::Device& device) {
  switch (choice) {
    case PrecisionChoice::automatic: return device.is_cuda() ? Precision::bf16 : Precision::fp32;
    case PrecisionChoice::fp32: return Precision::fp32;
    case PrecisionChoice::bf16: return Precision::bf16;
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
  was_enabled_ = autocast_enabled(device_type_);
  previous_dtype_ = autocast_dtype(device_type_);
  set_autocast_dtype(device_type_, precision == Precision::bf16 ? c10::ScalarType::BFloat16 : c10::ScalarType::Half);
  set_autocast(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_type_, was_enabled_);
  set_autocast_dtype(device_type_, previous_dtype_);
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

LossScalerState LossScaler::state() const { return {enabled_, scale_, good_steps_, skipped_}; }

void LossScaler::restore(const LossScalerState& state) {
  if (!enabled_ || !state.enabled) return;
  scale_ = state.scale > 0 && std::isfinite(state.scale) ? state.scale : options_.init_scale;
  good_steps_ = state.good_steps;
  skipped_ = state.skipped_steps;
}

}  // namespace tabby
