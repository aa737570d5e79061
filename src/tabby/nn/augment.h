// Batched random augmentation on tensors, on whatever device the batch is on
// (Keras preprocessing-layer semantics; see shared/TUTORIALS.md):
//   RandomFlip("horizontal")   mirrors each image left-right with probability 1/2
//   RandomRotation(f)          rotates by an angle uniform in [-f*2pi, f*2pi]
//   RandomZoom(h, w)           scales by 1+z, z uniform in [-h, h] (positive zooms out)
//   RandomTranslation(h, w)    shifts by a fraction of the height/width in [-h, h]
//   RandomContrast(f)          (x - mean) * c + mean, c uniform in [1-f, 1+f]
// Geometric transforms are fused into one affine_grid + grid_sample per batch,
// bilinear, with Keras' fill modes (reflect, constant, nearest).
// Random numbers come from LibTorch's default generator, which the trainer
// seeds per step, so a run is reproducible.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

namespace tabby::nn {

enum class FillMode { Reflect, Constant, Nearest };
FillMode parse_fill_mode(const std::string& name);

// Each range is [lo, hi]; a Keras single factor f means [-f, f].
struct AffineAugment {
  bool rotate = false;
  std::pair<double, double> rotation{0, 0};  // fractions of a full turn
  bool zoom = false;
  std::pair<double, double> zoom_height{0, 0}, zoom_width{0, 0};
  bool zoom_keep_aspect = true;  // width_factor not given: one factor for both
  bool translate = false;
  std::pair<double, double> translate_height{0, 0}, translate_width{0, 0};
  FillMode fill = FillMode::Reflect;
};

// x is (B,C,H,W) float. Returns a new tensor.
torch::Tensor random_flip(const torch::Tensor& x, bool horizontal, bool vertical);
torch::Tensor random_affine(const torch::Tensor& x, const AffineAugment& spec);
torch::Tensor random_contrast(const torch::Tensor& x, std::pair<double, double> factor);

// Builds the (B,2,3) affine_grid matrices for given per-image angles (radians),
// zoom factors and translations (fractions), mapping output to input
// coordinates in affine_grid's normalised space (align_corners=false).
torch::Tensor affine_matrices(const torch::Tensor& angle, const torch::Tensor& zoom_y, const torch::Tensor& zoom_x,
                              const torch::Tensor& shift_y, const torch::Tensor& shift_x, int64_t height,
                              int64_t width);

}  // namespace tabby::nn
