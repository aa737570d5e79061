// State dicts: the bridge between weight files (RawTensor maps from
// tabby/weights) and LibTorch modules. Names follow PyTorch's state_dict():
// recursive module names joined with '.', parameters and buffers together
// ("features.0.1.running_var", "layer1.0.bn1.num_batches_tracked").
#pragma once

#include "tabby/weights/raw_tensor.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace tabby::nn {

// A copy of a raw tensor as a CPU tensor of the same dtype and shape. Throws
// tabby::Error when the byte count does not match the shape.
torch::Tensor to_torch(const RawTensor& raw);
// A contiguous little-endian copy of a tensor (moved to the CPU first).
RawTensor to_raw(const torch::Tensor& tensor);

using TensorMap = std::map<std::string, torch::Tensor>;

// The module's parameters and buffers under their state-dict names (prefixed
// with `prefix`). The tensors share storage with the module: convert with
// to_raw (which copies) before the module changes if a snapshot is needed.
TensorMap module_state(const torch::nn::Module& module, const std::string& prefix = "");

// What did not match when loading a state dict into a module.
struct LoadReport {
  std::vector<std::string> missing;      // in the module, not in the file
  std::vector<std::string> unexpected;   // in the file, not in the module
  std::vector<std::string> wrong_shape;  // "name: file [a, b] vs model [c, d]"
  size_t loaded = 0;                     // tensors copied

  bool ok() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
  // One line: counts, then the names ("2 missing (a, b); 1 unexpected (c); ...").
  // At most `max_names` names are listed in all, then "... and N more".
  std::string describe(size_t max_names = 20) const;
};

// Copies the map's tensors into the module's parameters and buffers of the same
// name (under `prefix`; keys outside the prefix are ignored), without recording
// gradients and converting to the module tensor's dtype and device. Tensors
// with a wrong shape are not copied. A missing "num_batches_tracked" is not
// reported (PyTorch accepts its absence too; the counter is left as is).
// `strict` and !ok() → tabby::Error listing the mismatches, and nothing is
// copied at all.
LoadReport load_module_state(torch::nn::Module& module, const TensorMap& state, bool strict,
                             const std::string& prefix = "");

// Raw maps (as read from a file) converted with to_torch.
TensorMap to_torch(const RawTensorMap& raw);

}  // namespace tabby::nn
