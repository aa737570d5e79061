#include "tabby/train/mix.h"

#include <algorithm>
#include <cmath>

namespace tabby {

double sample_beta(double alpha) {
  const auto a = torch::full({2}, alpha, torch::kFloat64);
  const auto g = torch::_standard_gamma(a);
  const double x = g[0].item<double>(), y = g[1].item<double>();
  // Both draws can underflow to 0 for a tiny alpha; then the two images count the same.
  return x + y > 0 ? x / (x + y) : 0.5;
}

CutBox cutmix_box(double lambda, int64_t height, int64_t width, int64_t cy, int64_t cx) {
  const double r = 0.5 * std::sqrt(1.0 - lambda);
  const auto half_h = static_cast<int64_t>(r * static_cast<double>(height));
  const auto half_w = static_cast<int64_t>(r * static_cast<double>(width));
  CutBox b;
  b.y0 = std::max<int64_t>(cy - half_h, 0);
  b.y1 = std::min<int64_t>(cy + half_h, height);
  b.x0 = std::max<int64_t>(cx - half_w, 0);
  b.x1 = std::min<int64_t>(cx + half_w, width);
  return b;
}

MixedBatch apply_mixup(const torch::Tensor& inputs, const torch::Tensor& labels, double lambda) {
  MixedBatch m;
  m.inputs = inputs * lambda + inputs.roll(1, 0) * (1.0 - lambda);
  m.targets = {labels, labels.roll(1, 0), lambda};
  return m;
}

MixedBatch apply_cutmix(const torch::Tensor& inputs, const torch::Tensor& labels, const CutBox& box) {
  using torch::indexing::Slice;
  MixedBatch m;
  m.inputs = inputs.clone();
  const auto rows = Slice(box.y0, box.y1), cols = Slice(box.x0, box.x1);
  m.inputs.index_put_({Slice(), Slice(), rows, cols}, inputs.roll(1, 0).index({Slice(), Slice(), rows, cols}));
  const double lambda = 1.0 - box.area_fraction(inputs.size(2), inputs.size(3));
  m.targets = {labels, labels.roll(1, 0), lambda};
  return m;
}

MixedBatch mix_batch(const torch::Tensor& inputs, const torch::Tensor& labels, const MixOptions& o) {
  if (!o.enabled() || inputs.size(0) < 2) return {inputs, Targets{labels}};
  bool use_cutmix = o.cutmix_alpha > 0;
  if (o.mixup_alpha > 0 && o.cutmix_alpha > 0) use_cutmix = torch::rand({1}, torch::kFloat64).item<double>() < 0.5;
  if (!use_cutmix) return apply_mixup(inputs, labels, sample_beta(o.mixup_alpha));
  const double lambda = sample_beta(o.cutmix_alpha);
  const int64_t height = inputs.size(2), width = inputs.size(3);
  const int64_t cy = torch::randint(height, {1}, torch::kInt64).item<int64_t>();
  const int64_t cx = torch::randint(width, {1}, torch::kInt64).item<int64_t>();
  return apply_cutmix(inputs, labels, cutmix_box(lambda, height, width, cy, cx));
}

}  // namespace tabby
