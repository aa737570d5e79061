// Choosing where tensors live: --device auto|cpu|cuda[:N].
#pragma once

#include <torch/torch.h>

#include <string>

namespace tabby {

// Parses a --device value. "auto" picks CUDA when LibTorch sees a GPU, else the
// CPU. Asking for cuda on a machine without one is a tabby::Error.
torch::Device resolve_device(const std::string& spec);

// "cpu" or "cuda:0 (NVIDIA H100 ...)"-style text for logs.
std::string describe_device(const torch::Device& device);

}  // namespace tabby
