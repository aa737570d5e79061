// safetensors: the documented, code-free weights format tabby writes and reads.
// Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into
// the data that follows), an optional "__metadata__" object of strings, then the
// raw little-endian tensor data. Every field of a file read is validated; a bad
// file is a tabby::Error naming the file, the tensor and the problem.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "tabby/weights/raw_tensor.h"

namespace tabby {

struct SafetensorsFile {
  RawTensorMap tensors;
  std::map<std::string, std::string> metadata;
};

// Largest header accepted (the reference implementation's limit).
constexpr size_t kMaxSafetensorsHeader = 100'000'000;

SafetensorsFile read_safetensors(const std::filesystem::path& path);

// `source_name` names the bytes' origin in error messages (usually the path).
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& source_name);

// The file's bytes: header padded with spaces to a multiple of 8 bytes, tensors
// sorted by name with contiguous offsets. Throws tabby::Error when a tensor's
// data size does not match its dtype and shape.
std::string serialize_safetensors(const RawTensorMap& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

// Writes atomically: the path holds either its old content or the whole new file.
void write_safetensors(const std::filesystem::path& path, const RawTensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace tabby
