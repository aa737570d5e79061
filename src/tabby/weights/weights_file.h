// One entry point for "a file of weights": safetensors or a torch.save .pth,
// told apart by content (not by extension, which users rename freely).
#pragma once

#include <filesystem>

#include "tabby/weights/raw_tensor.h"

namespace tabby {

enum class WeightsFormat { Safetensors, Pth, Unknown };

// Which reader the bytes call for.
WeightsFormat detect_weights_format(const std::string& bytes);

// Reads a safetensors or .pth (zip or legacy) file; throws tabby::Error naming
// the file when it is neither or is damaged.
RawTensorMap read_weights_file(const std::filesystem::path& path);

}  // namespace tabby
