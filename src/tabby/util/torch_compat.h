// The LibTorch APIs that differ between the versions tabby is built with:
// Debian 12's 1.13 (libtorch-dev) and PyPI's 2.x (the GPU machine's). Every
// version switch lives here, so the call sites read the same for both.
// Header-only: only the engine, which links LibTorch, includes it.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <variant>

#define TABBY_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace tabby::torch_compat {

// Autocast state per device type. LibTorch 2.4 replaced the per-backend
// switches (is_enabled() for CUDA, is_cpu_enabled(), ...) with ones taking a
// device type and deprecated the old ones; 1.13 has only the old ones.

inline bool autocast_enabled(c10::DeviceType type) {
#if TABBY_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline void set_autocast_enabled(c10::DeviceType type, bool enabled) {
#if TABBY_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(type, enabled);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

inline c10::ScalarType autocast_dtype(c10::DeviceType type) {
#if TABBY_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(type);
#else
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                       : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast_dtype(c10::DeviceType type, c10::ScalarType dtype) {
#if TABBY_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

// The alternative T of a LibTorch option variant, or nullptr: LibTorch 2.3
// moved its variants from c10::variant to std::variant.
template <typename T, typename Variant>
const T* variant_get_if(const Variant& v) {
#if TABBY_TORCH_AT_LEAST(2, 3)
  return std::get_if<T>(&v);
#else
  return c10::get_if<T>(&v);
#endif
}

}  // namespace tabby::torch_compat
