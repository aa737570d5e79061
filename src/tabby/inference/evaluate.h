// Running a network over a whole dataset in inference mode: loss, accuracy
// and (optionally) every probability, for validation and `tabby evaluate`.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "tabby/nn/network.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/row_source.h"
#include "tabby/inference/precision.h"
#include "tabby/inference/tta.h"

namespace tabby {

struct EvalResult {
  double loss = 0;
  double accuracy = 0;
  int64_t count = 0;
  std::vector<int64_t> predicted_counts;  // images predicted as each class
  // With keep_outputs: CPU tensors in the loader's order.
  torch::Tensor probabilities;  // (N,C) float
  torch::Tensor labels;         // (N,) int64
  torch::Tensor losses;         // (N,) float, per sample
  torch::Tensor indices;        // (N,) int64, rows of the loader's source
};

// The plain loss of each row (B,): cross-entropy on logits (B,K), or binary
// cross-entropy on a one-unit sigmoid output (B,1). Training's loss, with its
// smoothing and mixing, is train/criterion.h.
torch::Tensor per_sample_loss(bool binary_output, const torch::Tensor& logits, const torch::Tensor& labels);

// Evaluates layers [first_layer, end) of `net` on every batch of `loader`
// (epoch 0 order). The network is put in eval mode and left so.
EvalResult evaluate_network(nn::NetworkImpl& net, BatchLoader& loader, size_t first_layer = 0,
                            bool keep_outputs = false, Precision precision = Precision::fp32, Tta tta = Tta::none);

// Outputs of layers [0, prefix) for every row of `images` (uint8 (N,H,W,3)),
// computed in inference mode on `device`: the feature cache. Returned on `device`.
torch::Tensor compute_prefix_outputs(nn::NetworkImpl& net, const RowSource& images, size_t prefix,
                                     const torch::Device& device, int64_t batch_size, const std::string& what);

}  // namespace tabby
