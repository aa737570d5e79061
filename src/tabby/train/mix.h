// Mixup and CutMix on a training batch, as torchvision's transforms.v2.MixUp
// and CutMix define them: one weight per batch, lambda ~ Beta(alpha, alpha);
// every image is paired with its neighbour in the batch (the batch rolled by
// one); mixup blends the two images, cutmix pastes a box of the partner whose
// side is sqrt(1 - lambda) of the image's, centred at a uniform point and
// clipped at the borders, and then sets lambda to the share of the image left
// uncovered. With both on, each batch uses one of the two, chosen evenly.
// Random numbers come from LibTorch's default generator (seeded per step).
#pragma once

#include <torch/torch.h>

#include "tabby/train/criterion.h"

namespace tabby {

struct MixOptions {
  double mixup_alpha = 0;
  double cutmix_alpha = 0;
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

struct MixedBatch {
  torch::Tensor inputs;  // (B,C,H,W)
  Targets targets;
};

// A draw from Beta(alpha, alpha), from two Gamma(alpha) draws.
double sample_beta(double alpha);

// The box CutMix pastes for weight `lambda` in an image of height x width,
// centred at (cy, cx): rows [y0, y1), columns [x0, x1).
struct CutBox {
  int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  double area_fraction(int64_t height, int64_t width) const {
    return static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(height * width);
  }
};
CutBox cutmix_box(double lambda, int64_t height, int64_t width, int64_t cy, int64_t cx);

// The images blended with weight `lambda` (mixup) or the box pasted (cutmix), and the targets.
MixedBatch apply_mixup(const torch::Tensor& inputs, const torch::Tensor& labels, double lambda);
MixedBatch apply_cutmix(const torch::Tensor& inputs, const torch::Tensor& labels, const CutBox& box);

// One batch as the options say (unchanged targets when neither is on, or for a batch of one image).
MixedBatch mix_batch(const torch::Tensor& inputs, const torch::Tensor& labels, const MixOptions& options);

}  // namespace tabby
