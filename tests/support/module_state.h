// A module's parameters and buffers as raw tensors under PyTorch's names, for
// comparing them byte for byte with a weights file's.
#pragma once

#include <torch/torch.h>

#include "tabby/nn/state_dict.h"

namespace tabby::testing {

inline RawTensorMap module_state_raw(const torch::nn::Module& module) {
  RawTensorMap out;
  for (const auto& [name, tensor] : nn::module_state(module)) out.emplace(name, nn::to_raw(tensor));
  return out;
}

}  // namespace tabby::testing
