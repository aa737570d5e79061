// Tensors as plain bytes: what weight files hold before any engine sees them.
// Everything in src/tabby/weights works on these so that reading and writing
// weight files needs no LibTorch (and is quick to build and test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tabby {

// Element types a weights file may hold. Names follow safetensors ("F32", ...).
enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

// Bytes per element (Bool is one byte, as in PyTorch and safetensors).
size_t dtype_size(DType dtype);

// The safetensors name: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8",
// "U8", "BOOL".
const char* dtype_name(DType dtype);

// The dtype with that safetensors name, or nullopt for an unknown or
// unsupported name.
std::optional<DType> dtype_from_name(const std::string& name);

// One tensor: its element type, shape and its elements as little-endian bytes in
// C order (row-major, contiguous).
struct RawTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string data;

  // Product of the shape (1 for a scalar, whose shape is empty).
  int64_t numel() const;
  // numel() * dtype_size(dtype): what data.size() must be.
  size_t expected_bytes() const;
};

// Tensors by name, ordered by name.
using RawTensorMap = std::map<std::string, RawTensor>;

// Shape as text for messages: "[64, 3, 3, 3]".
std::string shape_string(const std::vector<int64_t>& shape);

// Multiplies shape entries, returning nullopt when one is negative or the
// product (times `element_size`) would not fit in an int64.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape, size_t element_size = 1);

}  // namespace tabby
