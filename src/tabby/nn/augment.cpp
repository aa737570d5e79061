#include "tabby/nn/augment.h"

#include <cmath>

#include "tabby/util/error.h"

namespace tabby::nn {

namespace F = torch::nn::functional;

FillMode parse_fill_mode(const std::string& name) {
  if (name == "reflect") return FillMode::Reflect;
  if (name == "constant") return FillMode::Constant;
  if (name == "nearest") return FillMode::Nearest;
  throw Error("unknown fill_mode '" + name + "'", "use reflect, constant or nearest");
}

namespace {

// Uniform samples in [lo, hi] for each image in the batch.
torch::Tensor uniform(int64_t n, std::pair<double, double> range, const torch::TensorOptions& options) {
  return torch::rand({n}, options) * (range.second - range.first) + range.first;
}

}  // namespace

torch::Tensor random_flip(const torch::Tensor& x, bool horizontal, bool vertical) {
  // x is (B,C,H,W)
  const int64_t b = x.size(0);
  torch::Tensor out = x;
  auto opts = x.options().dtype(torch::kFloat32);
  if (horizontal) {
    auto mask = (torch::rand({b, 1, 1, 1}, opts) < 0.5);
    out = torch::where(mask, out.flip({3}), out);
  }
  if (vertical) {
    auto mask = (torch::rand({b, 1, 1, 1}, opts) < 0.5);
    out = torch::where(mask, out.flip({2}), out);
  }
  return out;
}

torch::Tensor affine_matrices(const torch::Tensor& angle, const torch::Tensor& zoom_y, const torch::Tensor& zoom_x,
                              const torch::Tensor& shift_y, const torch::Tensor& shift_x, int64_t height,
                              int64_t width) {
  // In pixel units centred on the image, output point p samples the input at
  // R(angle) * diag(zoom) * p - shift. affine_grid works in coordinates
  // normalised by half the width/height, so the rotation's off-diagonal terms
  // pick up the aspect ratio.
  const double h_over_w = static_cast<double>(height) / static_cast<double>(width);
  auto c = torch::cos(angle), s = torch::sin(angle);
  auto a00 = c * zoom_x;
  auto a01 = -s * zoom_y * h_over_w;
  auto a10 = s * zoom_x / h_over_w;
  auto a11 = c * zoom_y;
  auto t0 = -2.0 * shift_x;
  auto t1 = -2.0 * shift_y;
  auto row0 = torch::stack({a00, a01, t0}, 1);
  auto row1 = torch::stack({a10, a11, t1}, 1);
  return torch::stack({row0, row1}, 1);  // (B,2,3)
}

torch::Tensor random_affine(const torch::Tensor& x, const AffineAugment& spec) {
  // x is (B,C,H,W)
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  auto opts = x.options().dtype(torch::kFloat32);
  auto zeros = torch::zeros({b}, opts), ones = torch::ones({b}, opts);
  auto angle = spec.rotate ? uniform(b, spec.rotation, opts) * (2.0 * M_PI) : zeros;
  auto zoom_y = spec.zoom ? 1.0 + uniform(b, spec.zoom_height, opts) : ones;
  auto zoom_x = spec.zoom ? (spec.zoom_keep_aspect ? zoom_y : 1.0 + uniform(b, spec.zoom_width, opts)) : ones;
  auto shift_y = spec.translate ? uniform(b, spec.translate_height, opts) : zeros;
  auto shift_x = spec.translate ? uniform(b, spec.translate_width, opts) : zeros;
  auto theta = affine_matrices(angle, zoom_y, zoom_x, shift_y, shift_x, h, w).to(x.dtype());
  auto grid = F::affine_grid(theta, {b, x.size(1), h, w}, /*align_corners=*/false);
  F::GridSampleFuncOptions opt;
  opt.mode(torch::kBilinear).align_corners(false);
  switch (spec.fill) {
    case FillMode::Reflect: opt.padding_mode(torch::kReflection); break;
    case FillMode::Constant: opt.padding_mode(torch::kZeros); break;
    case FillMode::Nearest: opt.padding_mode(torch::kBorder); break;
  }
  return F::grid_sample(x, grid, opt);
}

torch::Tensor random_contrast(const torch::Tensor& x, std::pair<double, double> factor) {
  // x is (B,C,H,W); the mean is per image and channel, as tf.image.adjust_contrast.
  const int64_t b = x.size(0);
  auto c = uniform(b, factor, x.options()).view({b, 1, 1, 1});
  auto mean = x.mean({2, 3}, /*keepdim=*/true);
  return (x - mean) * c + mean;
}

}  // namespace tabby::nn
