// State-dict conversion and loading; see state_dict.h.
#include "tabby/nn/state_dict.h"

#include "tabby/util/error.h"

#include <cstring>
#include <set>
#include <sstream>

namespace tabby::nn {

namespace {

torch::ScalarType scalar_type_of(DType dtype) {
  switch (dtype) {
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::F64: return torch::kFloat64;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::Bool: return torch::kBool;
  }
  throw Error("unknown tensor element type", "this is a bug in tabby: please report it");
}

DType dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return DType::F32;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kFloat64: return DType::F64;
    case torch::kInt64: return DType::I64;
    case torch::kInt32: return DType::I32;
    case torch::kInt16: return DType::I16;
    case torch::kInt8: return DType::I8;
    case torch::kUInt8: return DType::U8;
    case torch::kBool: return DType::Bool;
    default: break;
  }
  throw Error(std::string("cannot store a tensor of type ") + c10::toString(type) + " in a weights file",
              "convert it to float32 first");
}

std::string shape_text(c10::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Parameters and buffers in registration order (the order PyTorch uses), by name.
std::vector<std::pair<std::string, torch::Tensor>> named_state(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    if (item.value().defined()) out.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    if (item.value().defined()) out.emplace_back(item.key(), item.value());
  return out;
}

bool is_batch_counter(const std::string& name) {
  static const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

torch::Tensor to_torch(const RawTensor& raw) {
  const auto type = scalar_type_of(raw.dtype);
  std::vector<int64_t> shape(raw.shape.begin(), raw.shape.end());
  torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  const size_t bytes = static_cast<size_t>(tensor.numel()) * tensor.element_size();
  if (bytes != raw.data.size())
    throw Error("tensor of shape " + shape_text(shape) + " holds " + std::to_string(raw.data.size()) +
                    " bytes, expected " + std::to_string(bytes),
                "the weights file is damaged or was written by an incompatible tool");
  if (bytes) std::memcpy(tensor.data_ptr(), raw.data.data(), bytes);
  return tensor;
}

TensorMap to_torch(const RawTensorMap& raw) {
  TensorMap out;
  for (const auto& [name, tensor] : raw) {
    try {
      out.emplace(name, to_torch(tensor));
    } catch (const Error& e) {
      throw Error(name + ": " + e.what(), e.hint());
    }
  }
  return out;
}

RawTensor to_raw(const torch::Tensor& tensor) {
  RawTensor raw;
  raw.dtype = dtype_of(tensor.scalar_type());
  torch::Tensor host = tensor.detach().to(torch::kCPU).contiguous();
  raw.shape.assign(host.sizes().begin(), host.sizes().end());
  raw.data.assign(static_cast<const char*>(host.data_ptr()), host.numel() * host.element_size());
  return raw;
}

TensorMap module_state(const torch::nn::Module& module, const std::string& prefix) {
  TensorMap out;
  for (auto& [name, tensor] : named_state(module)) out.emplace(prefix + name, tensor);
  return out;
}

std::string LoadReport::describe(size_t max_names) const {
  if (ok()) return "all " + std::to_string(loaded) + " tensors match";
  size_t budget = max_names;
  size_t left_out = 0;
  std::string text;
  auto section = [&](const std::vector<std::string>& names, const char* what) {
    if (names.empty()) return;
    if (!text.empty()) text += "; ";
    text += std::to_string(names.size()) + " " + what;
    std::string listed;
    for (const auto& name : names) {
      if (budget == 0) {
        ++left_out;
        continue;
      }
      listed += (listed.empty() ? "" : ", ") + name;
      --budget;
    }
    if (!listed.empty()) text += " (" + listed + ")";
  };
  section(missing, "missing");
  section(unexpected, "unexpected");
  section(wrong_shape, "wrong shape");
  if (left_out) text += "; ... and " + std::to_string(left_out) + " more";
  return text;
}

LoadReport load_module_state(torch::nn::Module& module, const TensorMap& state, bool strict,
                             const std::string& prefix) {
  LoadReport report;
  std::set<std::string> model_names;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (destination, source)
  for (auto& [name, target] : named_state(module)) {
    const std::string full = prefix + name;
    model_names.insert(full);
    auto found = state.find(full);
    if (found == state.end()) {
      if (!is_batch_counter(full)) report.missing.push_back(full);
      continue;
    }
    const torch::Tensor& source = found->second;
    if (!source.defined() || source.sizes() != target.sizes()) {
      report.wrong_shape.push_back(full + ": file " +
                                   (source.defined() ? shape_text(source.sizes()) : std::string("(empty)")) +
                                   " vs model " + shape_text(target.sizes()));
      continue;
    }
    copies.emplace_back(target, source);
  }
  for (const auto& [name, tensor] : state) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    if (!model_names.count(name)) report.unexpected.push_back(name);
  }
  if (strict && !report.ok())
    throw Error("weights do not match the model: " + report.describe(),
                "load weights saved from the same architecture (and number of classes), or load non-strictly");

  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies) target.copy_(source);
  report.loaded = copies.size();
  return report;
}

}  // namespace tabby::nn
