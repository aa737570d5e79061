// torchvision's colour and AutoAugment-family ops on batches of unit images
// ((B,3,H,W) float in [0, 1]), with one parameter per image. The formulas
// follow torchvision's tensor implementations (transforms/functional_tensor.py)
// so that tests can compare against them image by image.
#include <cmath>

#include "tabby/nn/augment.h"
#include "tabby/util/error.h"

namespace tabby::nn {

namespace F = torch::nn::functional;

namespace {

// A (B,) tensor as (B,1,1,1) in the images' dtype and device.
torch::Tensor per_image_factor(const torch::Tensor& v, const torch::Tensor& like) {
  return v.to(like.options()).view({-1, 1, 1, 1});
}

// torchvision's _blend: ratio * a + (1 - ratio) * b, clamped to the unit range.
torch::Tensor blend_unit(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& ratio) {
  auto r = per_image_factor(ratio, a);
  return (r * a + (1.0 - r) * b).clamp(0.0, 1.0);
}

// torchvision turns floats into uint8 by truncating u * 255.999 (convert_image_dtype).
torch::Tensor quantise_unit(const torch::Tensor& u) { return torch::floor(u.clamp(0.0, 1.0) * (256.0 - 1e-3)); }

struct Hsv {
  torch::Tensor h, s, v;  // each (B,H,W)
};

Hsv rgb_to_hsv(const torch::Tensor& u) {
  auto r = u.select(1, 0), g = u.select(1, 1), b = u.select(1, 2);
  auto maxc = std::get<0>(u.max(1)), minc = std::get<0>(u.min(1));
  // Grey pixels (max == min) have no hue and no saturation; the divisors are
  // replaced by 1 there so no NaN appears, as in Pillow and torchvision.
  auto grey = maxc == minc;
  auto ones = torch::ones_like(maxc);
  auto chroma = maxc - minc;
  auto s = chroma / torch::where(grey, ones, maxc);
  auto divisor = torch::where(grey, ones, chroma);
  auto rc = (maxc - r) / divisor, gc = (maxc - g) / divisor, bc = (maxc - b) / divisor;
  auto is_r = maxc == r, is_g = (maxc == g).logical_and(is_r.logical_not());
  auto is_b = is_r.logical_or(maxc == g).logical_not();
  auto h = is_r.to(u.dtype()) * (bc - gc) + is_g.to(u.dtype()) * (2.0 + rc - bc) + is_b.to(u.dtype()) * (4.0 + gc - rc);
  h = torch::fmod(h / 6.0 + 1.0, 1.0);
  return {h, s, maxc};
}

torch::Tensor hsv_to_rgb(const Hsv& hsv) {
  auto sector = torch::floor(hsv.h * 6.0);
  auto f = hsv.h * 6.0 - sector;
  auto i = torch::remainder(sector.to(torch::kInt64), 6).unsqueeze(1);  // (B,1,H,W)
  auto v = hsv.v, s = hsv.s;
  auto p = (v * (1.0 - s)).clamp(0.0, 1.0);
  auto q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
  auto t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
  // Each channel takes one of six candidates by sector.
  auto pick = [&](std::initializer_list<torch::Tensor> candidates) {
    return torch::stack(std::vector<torch::Tensor>(candidates), 1).gather(1, i);
  };
  return torch::cat({pick({v, q, p, p, t, v}), pick({t, v, v, q, p, p}), pick({p, p, t, v, v, q})}, 1);
}

// Rows of `mask` that are true, as an index tensor (a host sync on CUDA).
torch::Tensor rows_where(const torch::Tensor& mask) { return mask.nonzero().squeeze(1); }

// Replaces the images `rows` of `out` by fn(those images of `in`).
template <typename Fn>
void apply_to_rows(torch::Tensor& out, const torch::Tensor& in, const torch::Tensor& rows, Fn fn) {
  if (rows.numel() == 0) return;
  out.index_copy_(0, rows, fn(in.index_select(0, rows), rows));
}

// (B,) signed magnitudes: table[op, bin], negated for signed ops where `negate`.
torch::Tensor signed_magnitudes(const torch::Tensor& table, const torch::Tensor& op, const torch::Tensor& bin,
                                const torch::Tensor& negate) {
  auto signed_op = (op >= static_cast<int64_t>(AugmentOp::ShearX)) & (op <= static_cast<int64_t>(AugmentOp::Sharpness));
  auto magnitude = table.index({op, bin});
  return torch::where(signed_op & negate, -magnitude, magnitude);
}

torch::Tensor shear_translate_rotate(const torch::Tensor& u, const torch::Tensor& op, const torch::Tensor& magnitude,
                                     bool bilinear) {
  const int64_t h = u.size(2), w = u.size(3);
  auto zero = torch::zeros_like(magnitude);
  auto is = [&](AugmentOp o) { return op == static_cast<int64_t>(o); };
  auto shear = is(AugmentOp::ShearX) | is(AugmentOp::ShearY);
  // torchvision shears about the top-left corner, translates by whole pixels
  // (int() of the magnitude) and rotates about the centre.
  auto matrices = torchvision_inverse_affine(torch::where(is(AugmentOp::Rotate), magnitude, zero),
                                             torch::where(is(AugmentOp::TranslateX), torch::trunc(magnitude), zero),
                                             torch::where(is(AugmentOp::TranslateY), torch::trunc(magnitude), zero),
                                             torch::where(is(AugmentOp::ShearX), torch::atan(magnitude), zero),
                                             torch::where(is(AugmentOp::ShearY), torch::atan(magnitude), zero),
                                             torch::where(shear, zero - 0.5 * static_cast<double>(w), zero),
                                             torch::where(shear, zero - 0.5 * static_cast<double>(h), zero));
  auto grid = pixel_affine_grid(matrices, u.sizes(), u.scalar_type());
  F::GridSampleFuncOptions opt;
  if (bilinear) {
    opt.mode(torch::kBilinear);
  } else {
    opt.mode(torch::kNearest);
  }
  opt.padding_mode(torch::kZeros).align_corners(false);
  return F::grid_sample(u, grid, opt);
}

}  // namespace

torch::Tensor rgb_to_grey(const torch::Tensor& u) {
  return (0.2989 * u.select(1, 0) + 0.587 * u.select(1, 1) + 0.114 * u.select(1, 2)).unsqueeze(1);
}

torch::Tensor adjust_brightness(const torch::Tensor& u, const torch::Tensor& factor) {
  return (per_image_factor(factor, u) * u).clamp(0.0, 1.0);
}

torch::Tensor adjust_contrast(const torch::Tensor& u, const torch::Tensor& factor) {
  return blend_unit(u, rgb_to_grey(u).mean({1, 2, 3}, /*keepdim=*/true), factor);
}

torch::Tensor adjust_saturation(const torch::Tensor& u, const torch::Tensor& factor) {
  return blend_unit(u, rgb_to_grey(u), factor);
}

torch::Tensor adjust_hue(const torch::Tensor& u, const torch::Tensor& shift) {
  Hsv hsv = rgb_to_hsv(u);
  hsv.h = torch::remainder(hsv.h + shift.to(u.options()).view({-1, 1, 1}), 1.0);
  return hsv_to_rgb(hsv);
}

torch::Tensor adjust_sharpness(const torch::Tensor& u, const torch::Tensor& factor) {
  if (u.size(2) <= 2 || u.size(3) <= 2) return u;
  // A 3x3 smoothing kernel (centre weight 5) on the interior; the border
  // pixels stay as they are, as in PIL's ImageFilter.SMOOTH and torchvision.
  auto kernel = torch::ones({3, 3}, u.options());
  kernel[1][1] = 5.0;
  kernel = (kernel / kernel.sum()).expand({u.size(1), 1, 3, 3});
  auto blurred = F::conv2d(u, kernel, F::Conv2dFuncOptions().groups(u.size(1)));
  auto degenerate = u.clone();
  degenerate.slice(2, 1, -1).slice(3, 1, -1).copy_(blurred);
  return blend_unit(u, degenerate, factor);
}

torch::Tensor color_jitter(const torch::Tensor& u, const torch::Tensor& brightness, const torch::Tensor& contrast,
                           const torch::Tensor& saturation, const torch::Tensor& hue, const torch::Tensor& order) {
  const int64_t b = u.size(0);
  auto x = u.clamp(0.0, 1.0);
  auto opts = u.options();
  auto bright = brightness.to(opts), contr = contrast.to(opts), sat = saturation.to(opts), shift = hue.to(opts);
  for (int64_t step = 0; step < 4; ++step) {
    auto op = order.select(1, step).to(u.device());
    auto is_b = op == 0, is_c = op == 1, is_s = op == 2, is_h = op == 3;
    // The three blends differ only in what they blend with, so one blend per
    // step serves them all: black, the grey mean or the grey image, with
    // factor 1 (an exact identity) for the images whose op is the hue.
    auto grey = rgb_to_grey(x);
    auto degenerate = torch::where(is_c.view({b, 1, 1, 1}), grey.mean({1, 2, 3}, true).expand_as(grey), grey);
    degenerate = torch::where(is_b.view({b, 1, 1, 1}), torch::zeros_like(degenerate), degenerate);
    auto factor = torch::where(is_b, bright, torch::where(is_c, contr, torch::where(is_s, sat, torch::ones_like(sat))));
    x = blend_unit(x, degenerate, factor);
    // A zero shift is skipped, as torchvision skips a hue range of [0, 0] (the
    // HSV round trip is not bit-exact).
    auto rows = rows_where(is_h & (shift != 0));
    apply_to_rows(x, x, rows, [&](const torch::Tensor& sub, const torch::Tensor& r) {
      return adjust_hue(sub, shift.index_select(0, r));
    });
  }
  return x;
}

torch::Tensor random_color_jitter(const torch::Tensor& u, const ColorJitterRanges& ranges) {
  const int64_t b = u.size(0);
  auto opts = u.options().dtype(torch::kFloat32);
  auto draw = [&](std::pair<double, double> r) { return torch::rand({b}, opts) * (r.second - r.first) + r.first; };
  auto order = torch::argsort(torch::rand({b, 4}, opts), /*dim=*/1, /*descending=*/false);
  auto bright = draw(ranges.brightness), contr = draw(ranges.contrast), sat = draw(ranges.saturation);
  auto hue = draw(ranges.hue);
  return color_jitter(u, bright, contr, sat, hue, order);
}

const char* augment_op_name(AugmentOp op) {
  static const char* names[] = {"Identity",   "ShearX", "ShearY",   "TranslateX", "TranslateY",
                                "Rotate",     "Brightness", "Color", "Contrast",   "Sharpness",
                                "Posterize",  "Solarize",   "AutoContrast", "Equalize"};
  return names[static_cast<int64_t>(op)];
}

torch::Tensor augment_magnitudes(bool wide, int64_t bins, int64_t height, int64_t width) {
  if (bins < 2) throw UsageError("augmentation needs at least 2 magnitude bins");
  // torchvision builds these in float32; the same rounding keeps the draws identical.
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  auto ramp = [&](double hi) { return torch::linspace(0.0, hi, bins, f32); };
  auto none = torch::zeros({bins}, f32);
  const double shear = wide ? 0.99 : 0.3, colour = wide ? 0.99 : 0.9;
  const double translate_x = wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(width);
  const double translate_y = wide ? 32.0 : 150.0 / 331.0 * static_cast<double>(height);
  const double rotate = wide ? 135.0 : 30.0;
  const double posterize_steps = wide ? 6.0 : 4.0;
  auto posterize_bits = 8.0 - torch::round(torch::arange(bins, f32) / ((static_cast<double>(bins) - 1.0) / posterize_steps));
  auto solarize_at = torch::linspace(255.0, 0.0, bins, f32);
  return torch::stack({none, ramp(shear), ramp(shear), ramp(translate_x), ramp(translate_y), ramp(rotate),
                       ramp(colour), ramp(colour), ramp(colour), ramp(colour), posterize_bits, solarize_at, none, none})
      .to(torch::kFloat64);
}

torch::Tensor posterize(const torch::Tensor& u, const torch::Tensor& bits) {
  // Keeping the top `bits` bits of an 8-bit value: floor to a multiple of 2^(8 - bits).
  auto step = torch::pow(2.0, 8.0 - bits.to(u.options())).view({-1, 1, 1, 1});
  return torch::floor(quantise_unit(u) / step) * step / 255.0;
}

torch::Tensor solarize(const torch::Tensor& u, const torch::Tensor& threshold) {
  return torch::where(u >= per_image_factor(threshold, u), 1.0 - u, u);
}

torch::Tensor autocontrast(const torch::Tensor& u) {
  auto lo = u.amin({2, 3}, true), hi = u.amax({2, 3}, true);
  auto scale = 1.0 / (hi - lo);
  // A flat channel (infinite scale) is left as it is.
  auto flat = torch::isfinite(scale).logical_not();
  lo = torch::where(flat, torch::zeros_like(lo), lo);
  scale = torch::where(flat, torch::ones_like(scale), scale);
  return ((u - lo) * scale).clamp(0.0, 1.0);
}

torch::Tensor equalize(const torch::Tensor& u) {
  // Histogram equalisation of each image's channels on 8-bit levels, with
  // PIL's lookup table (as torchvision's tensor equalize): the step is the
  // pixel count outside the highest occupied level over 255.
  const int64_t rows = u.size(0) * u.size(1), n = u.size(2) * u.size(3);
  auto levels = quantise_unit(u).to(torch::kInt64).reshape({rows, n});
  auto offsets = torch::arange(rows, levels.options()).unsqueeze(1) * 256;
  auto hist = torch::bincount((levels + offsets).flatten(), {}, rows * 256).view({rows, 256});
  auto bins = torch::arange(256, levels.options()).unsqueeze(0);
  auto top = torch::where(hist > 0, bins, torch::full_like(bins, -1)).amax(1, true);
  auto step = torch::div(n - hist.gather(1, top), 255, "floor");  // (rows,1)
  auto safe_step = torch::where(step == 0, torch::ones_like(step), step);
  auto lut = torch::div(hist.cumsum(1) + torch::div(step, 2, "floor"), safe_step, "floor");
  lut = torch::cat({torch::zeros_like(step), lut.narrow(1, 0, 255)}, 1).clamp(0, 255);
  auto mapped = torch::where(step == 0, levels, lut.gather(1, levels));
  return (mapped.to(u.dtype()) / 255.0).view(u.sizes());
}

torch::Tensor apply_augment_ops(const torch::Tensor& u, const torch::Tensor& op, const torch::Tensor& magnitude,
                                bool bilinear) {
  auto out = u.clone();
  auto ops = op.to(u.device()), mags = magnitude.to(u.options().dtype(torch::kFloat64));
  auto at = [&](const torch::Tensor& r) { return mags.index_select(0, r); };
  auto is = [&](AugmentOp o) { return ops == static_cast<int64_t>(o); };
  // The geometric ops share one grid_sample; each other op runs on its images.
  auto geometric = (ops >= static_cast<int64_t>(AugmentOp::ShearX)) & (ops <= static_cast<int64_t>(AugmentOp::Rotate));
  apply_to_rows(out, u, rows_where(geometric), [&](const torch::Tensor& sub, const torch::Tensor& r) {
    return shear_translate_rotate(sub, ops.index_select(0, r), at(r), bilinear);
  });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Brightness)),
                [&](const torch::Tensor& sub, const torch::Tensor& r) { return adjust_brightness(sub, 1.0 + at(r)); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Color)),
                [&](const torch::Tensor& sub, const torch::Tensor& r) { return adjust_saturation(sub, 1.0 + at(r)); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Contrast)),
                [&](const torch::Tensor& sub, const torch::Tensor& r) { return adjust_contrast(sub, 1.0 + at(r)); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Sharpness)),
                [&](const torch::Tensor& sub, const torch::Tensor& r) { return adjust_sharpness(sub, 1.0 + at(r)); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Posterize)),
                [&](const torch::Tensor& sub, const torch::Tensor& r) { return posterize(sub, at(r)); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Solarize)),
                [&](const torch::Tensor& sub, const torch::Tensor& r) { return solarize(sub, at(r) / 255.0); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::AutoContrast)),
                [&](const torch::Tensor& sub, const torch::Tensor&) { return autocontrast(sub); });
  apply_to_rows(out, u, rows_where(is(AugmentOp::Equalize)),
                [&](const torch::Tensor& sub, const torch::Tensor&) { return equalize(sub); });
  return out;
}

torch::Tensor trivial_augment_wide(const torch::Tensor& u, int64_t bins, bool bilinear) {
  const int64_t b = u.size(0);
  auto table = augment_magnitudes(true, bins, u.size(2), u.size(3)).to(u.device());
  auto longs = u.options().dtype(torch::kInt64);
  auto op = torch::randint(kAugmentOpCount, {b}, longs);
  auto bin = torch::randint(bins, {b}, longs);
  auto negate = torch::randint(2, {b}, longs) == 1;
  return apply_augment_ops(u, op, signed_magnitudes(table, op, bin, negate), bilinear);
}

torch::Tensor rand_augment(const torch::Tensor& u, int64_t num_ops, int64_t magnitude, int64_t bins, bool bilinear) {
  if (magnitude < 0 || magnitude >= bins) throw UsageError("RandAugment's magnitude must be a bin in [0, bins)");
  const int64_t b = u.size(0);
  auto table = augment_magnitudes(false, bins, u.size(2), u.size(3)).to(u.device());
  auto longs = u.options().dtype(torch::kInt64);
  auto bin = torch::full({b}, magnitude, longs);
  auto x = u;
  for (int64_t i = 0; i < num_ops; ++i) {
    auto op = torch::randint(kAugmentOpCount, {b}, longs);
    auto negate = torch::randint(2, {b}, longs) == 1;
    x = apply_augment_ops(x, op, signed_magnitudes(table, op, bin, negate), bilinear);
  }
  return x;
}

}  // namespace tabby::nn
