// Test-time augmentation: the logits of an image averaged with those of its
// transformed copies. `flip` adds the left-right mirror (the augmentation
// almost every photo classifier trains with). Averaging logits rather than
// probabilities keeps one code path for losses, probabilities and classes;
// for two views it is the normalised geometric mean of their probabilities.
#pragma once

#include <torch/torch.h>

#include <string>

#include "tabby/nn/network.h"
#include "tabby/util/enum_names.h"

namespace tabby {

enum class Tta { none, flip };
TABBY_ENUM_NAMES(Tta, {Tta::none, "none"}, {Tta::flip, "flip"});

// UsageError naming the flag for an unknown word.
Tta parse_tta(const std::string& word);

// Logits of layers [first_layer, end) of `net` for `x` (B,3,H,W), with `tta`
// views averaged. Views are images, so TTA needs first_layer == 0.
torch::Tensor forward_with_tta(nn::NetworkImpl& net, const torch::Tensor& x, size_t first_layer, Tta tta);

}  // namespace tabby
