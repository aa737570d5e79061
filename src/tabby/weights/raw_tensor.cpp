#include "tabby/weights/raw_tensor.h"

#include <limits>

namespace tabby {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16: return 2;
    case DType::I8:
    case DType::U8:
    case DType::Bool: return 1;
  }
  return 1;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

std::optional<DType> dtype_from_name(const std::string& name) {
  static const DType all[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I64,
                              DType::I32, DType::I16, DType::I8,   DType::U8,  DType::Bool};
  for (DType d : all) {
    if (name == dtype_name(d)) return d;
  }
  return std::nullopt;
}

std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape, size_t element_size) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) empty = true;
  }
  // A zero dimension makes the product 0 whatever the others are; still reject
  // negative entries above, but do not report overflow for (0, huge, huge).
  if (empty) return 0;
  for (int64_t d : shape) {
    if (n > kMax / d) return std::nullopt;
    n *= d;
  }
  if (element_size > 1 && n > kMax / static_cast<int64_t>(element_size)) return std::nullopt;
  return n;
}

int64_t RawTensor::numel() const {
  auto n = checked_numel(shape);
  return n ? *n : -1;
}

size_t RawTensor::expected_bytes() const {
  auto n = checked_numel(shape, dtype_size(dtype));
  return n ? static_cast<size_t>(*n) * dtype_size(dtype) : std::numeric_limits<size_t>::max();
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace tabby
