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

namespace tabby::nn {

torch::Tensor pixel_affine_grid(const torch::Tensor& matrices, c10::IntArrayRef sizes, c10::ScalarType dtype) {
  // Built as torchvision's _gen_affine_grid does (pixel-centre base grid times
  // the matrix scaled by half the size, in the images' dtype), so that nearest
  // sampling breaks exact ties between two pixels the same way.
  const int64_t b = sizes[0], h = sizes[2], w = sizes[3];
  auto opts = matrices.options().dtype(dtype);
  auto xs = torch::linspace(-0.5 * w + 0.5, 0.5 * w - 0.5, w, opts).view({1, w}).expand({h, w});
  auto ys = torch::linspace(-0.5 * h + 0.5, 0.5 * h - 0.5, h, opts).view({h, 1}).expand({h, w});
  auto base = torch::stack({xs, ys, torch::ones({h, w}, opts)}, 2).view({1, h * w, 3}).expand({b, h * w, 3});
  auto half = torch::tensor({0.5 * static_cast<double>(w), 0.5 * static_cast<double>(h)}, opts);
  auto scaled = matrices.to(dtype).transpose(1, 2) / half;  // (B,3,2)
  return base.bmm(scaled).view({b, h, w, 2});
}

torch::Tensor torchvision_inverse_affine(const torch::Tensor& angle, const torch::Tensor& tx, const torch::Tensor& ty,
                                         const torch::Tensor& shear_x, const torch::Tensor& shear_y,
                                         const torch::Tensor& cx, const torch::Tensor& cy) {
  // F.affine on tensors inverts the rotation-shear with -angle, because its y
  // axis points down.
  auto rot = angle * (-M_PI / 180.0);
  auto cos_sy = torch::cos(shear_y), tan_sx = torch::tan(shear_x);
  auto a = torch::cos(rot - shear_y) / cos_sy;
  auto b = -torch::cos(rot - shear_y) * tan_sx / cos_sy - torch::sin(rot);
  auto c = torch::sin(rot - shear_y) / cos_sy;
  auto d = -torch::sin(rot - shear_y) * tan_sx / cos_sy + torch::cos(rot);
  // The rotation-shear has determinant 1, so its inverse is the adjugate;
  // then undo the translation and move the centre back.
  auto m00 = d, m01 = -b, m10 = -c, m11 = a;
  auto m02 = m00 * (-cx - tx) + m01 * (-cy - ty) + cx;
  auto m12 = m10 * (-cx - tx) + m11 * (-cy - ty) + cy;
  return torch::stack({torch::stack({m00, m01, m02}, 1), torch::stack({m10, m11, m12}, 1)}, 1);
}

torch::Tensor random_resized_crop_boxes(int64_t batch, int64_t height, int64_t width, std::pair<double, double> scale,
                                        std::pair<double, double> ratio, const torch::Device& device) {
  auto opts = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  constexpr int64_t kTries = 10;  // torchvision's
  const double h = static_cast<double>(height), w = static_cast<double>(width);
  auto area = (torch::rand({batch, kTries}, opts) * (scale.second - scale.first) + scale.first) * (h * w);
  const double log_lo = std::log(ratio.first), log_hi = std::log(ratio.second);
  auto aspect = torch::exp(torch::rand({batch, kTries}, opts) * (log_hi - log_lo) + log_lo);
  // torch::round and Python's round both round halves to even.
  auto crop_w = torch::round(torch::sqrt(area * aspect)), crop_h = torch::round(torch::sqrt(area / aspect));
  auto fits = (crop_w > 0) & (crop_w <= w) & (crop_h > 0) & (crop_h <= h);
  // The first try that fits (argmax returns the first maximum).
  auto first = fits.to(torch::kInt64).argmax(1, /*keepdim=*/true);
  auto found = fits.any(1);
  // No try fits: the whole image, its aspect clamped into the ratio range, centred.
  double fallback_w = w, fallback_h = h;
  if (w / h < ratio.first) {
    fallback_h = std::nearbyint(w / ratio.first);
  } else if (w / h > ratio.second) {
    fallback_w = std::nearbyint(h * ratio.second);
  }
  auto cw = torch::where(found, crop_w.gather(1, first).squeeze(1), torch::full({batch}, fallback_w, opts));
  auto ch = torch::where(found, crop_h.gather(1, first).squeeze(1), torch::full({batch}, fallback_h, opts));
  auto top = torch::where(found, torch::floor(torch::rand({batch}, opts) * (h - ch + 1)),
                          torch::full({batch}, std::floor((h - fallback_h) / 2), opts));
  auto left = torch::where(found, torch::floor(torch::rand({batch}, opts) * (w - cw + 1)),
                           torch::full({batch}, std::floor((w - fallback_w) / 2), opts));
  return torch::stack({top, left, ch, cw}, 1).to(torch::kInt64);
}

torch::Tensor resized_crop(const torch::Tensor& x, const torch::Tensor& boxes) {
  // x is (B,C,H,W); boxes (B,4) as (top, left, height, width).
  const double h = static_cast<double>(x.size(2)), w = static_cast<double>(x.size(3));
  auto box = boxes.to(x.options().dtype(torch::kFloat64));
  auto top = box.select(1, 0), left = box.select(1, 1), ch = box.select(1, 2), cw = box.select(1, 3);
  auto zero = torch::zeros_like(top);
  // Output pixel x (from the centre) samples the box at left + (x + W/2) * cw/W, in centred input coordinates.
  auto matrices = torch::stack({torch::stack({cw / w, zero, left + cw / 2 - w / 2}, 1),
                                torch::stack({zero, ch / h, top + ch / 2 - h / 2}, 1)},
                               1);
  auto grid = pixel_affine_grid(matrices, x.sizes(), x.scalar_type());
  // interpolate() on the cropped tensor clamps its samples to the crop; so
  // do we, so the edges do not mix in the pixels just outside the box.
  auto lo = torch::stack({(2 * left + 1) / w - 1, (2 * top + 1) / h - 1}, 1).to(x.dtype()).view({-1, 1, 1, 2});
  auto hi = torch::stack({(2 * (left + cw) - 1) / w - 1, (2 * (top + ch) - 1) / h - 1}, 1)
                .to(x.dtype())
                .view({-1, 1, 1, 2});
  grid = torch::max(torch::min(grid, hi), lo);
  F::GridSampleFuncOptions opt;
  opt.mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false);
  return F::grid_sample(x, grid, opt);
}

}  // namespace tabby::nn
