#include "tabby/nn/keras_layers.h"

#include <cmath>
#include <optional>

#include "tabby/nn/augment.h"
#include "tabby/util/error.h"
#include "tabby/util/torch_compat.h"

namespace tabby::nn {

namespace F = torch::nn::functional;

ActivationKind parse_activation(const std::string& name, const std::string& where) {
  if (name == "none" || name == "linear" || name.empty()) return ActivationKind::None;
  if (name == "relu") return ActivationKind::ReLU;
  if (name == "sigmoid") return ActivationKind::Sigmoid;
  if (name == "softmax") return ActivationKind::Softmax;
  if (name == "tanh") return ActivationKind::Tanh;
  if (name == "gelu") return ActivationKind::GELU;
  if (name == "swish" || name == "silu") return ActivationKind::Swish;
  throw Error(where + ": unknown activation '" + name + "'", "use relu, sigmoid, softmax, tanh, gelu, swish or none");
}

const char* activation_name(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::None: return "none";
    case ActivationKind::ReLU: return "relu";
    case ActivationKind::Sigmoid: return "sigmoid";
    case ActivationKind::Softmax: return "softmax";
    case ActivationKind::Tanh: return "tanh";
    case ActivationKind::GELU: return "gelu";
    case ActivationKind::Swish: return "swish";
  }
  return "none";
}

torch::Tensor apply_activation(ActivationKind kind, const torch::Tensor& x) {
  switch (kind) {
    case ActivationKind::None: return x;
    case ActivationKind::ReLU: return torch::relu(x);
    case ActivationKind::Sigmoid: return torch::sigmoid(x);
    case ActivationKind::Softmax: return torch::softmax(x, x.dim() == 4 ? 1 : -1);
    case ActivationKind::Tanh: return torch::tanh(x);
    case ActivationKind::GELU: return torch::gelu(x);
    case ActivationKind::Swish: return x * torch::sigmoid(x);
  }
  return x;
}

Value export_activation(GraphWriter& g, ActivationKind kind, const Value& x) {
  const torch::Tensor y = apply_activation(kind, x.sample);
  switch (kind) {
    case ActivationKind::None: return x;
    case ActivationKind::ReLU: return g.node("Relu", {x.name}, {}, y);
    case ActivationKind::Sigmoid: return g.node("Sigmoid", {x.name}, {}, y);
    case ActivationKind::Tanh: return g.node("Tanh", {x.name}, {}, y);
    case ActivationKind::Softmax:
      // Before opset 13 Softmax flattens everything after `axis`: right for (B,F) only.
      if (x.sample.dim() != 2 && g.opset() < 13) {
        throw UsageError("a softmax over image-shaped values needs --opset 13 or later");
      }
      return g.node("Softmax", {x.name}, {{"axis", int64_t{x.sample.dim() == 4 ? 1 : -1}}}, y);
    case ActivationKind::Swish: {
      const Value s = g.node("Sigmoid", {x.name}, {}, torch::sigmoid(x.sample));
      return g.node("Mul", {x.name, s.name}, {}, y);
    }
    case ActivationKind::GELU: {
      // 0.5 * x * (1 + erf(x / sqrt(2))), the exact GELU torch computes.
      const Value scaled = g.node("Div", {x.name, g.constant("gelu.sqrt2", torch::tensor(static_cast<float>(std::sqrt(2.0))))},
                                  {}, x.sample / std::sqrt(2.0));
      const Value erf = g.node("Erf", {scaled.name}, {}, torch::erf(scaled.sample));
      const Value one = g.node("Add", {erf.name, g.constant("gelu.one", torch::tensor(1.0f))}, {}, erf.sample + 1);
      const Value half = g.node("Mul", {x.name, g.constant("gelu.half", torch::tensor(0.5f))}, {}, x.sample * 0.5);
      return g.node("Mul", {half.name, one.name}, {}, y);
    }
  }
  return x;
}

Value LayerImpl::export_onnx(GraphWriter&, const Value&) {
  throw Error("layer type " + type_ + " cannot be exported to ONNX");
}

namespace {

std::string where_of(const LayerSpec& spec) { return "layer '" + spec.name + "' (" + spec.type + ")"; }

// Keras' default kernel initialiser.
void glorot_uniform_(torch::Tensor& w, int64_t fan_in, int64_t fan_out) {
  torch::NoGradGuard no_grad;
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  w.uniform_(-limit, limit);
}

// TensorFlow's "same" padding: total = max((ceil(n/s)-1)*s + k - n, 0), the
// odd pixel going to the bottom/right.
std::pair<int64_t, int64_t> same_padding(int64_t n, int64_t k, int64_t s) {
  const int64_t out = (n + s - 1) / s;
  const int64_t total = std::max<int64_t>((out - 1) * s + k - n, 0);
  return {total / 2, total - total / 2};
}

std::string get_padding(const LayerSpec& spec) {
  std::string p = spec.get_string("padding", "valid");
  if (p != "valid" && p != "same") throw Error(where_of(spec) + ": padding must be \"valid\" or \"same\"");
  return p;
}

void require_positive(const LayerSpec& spec, const char* key, int64_t v) {
  if (v <= 0) throw Error(where_of(spec) + ": `" + key + "` must be positive");
}

void require_4d(const LayerSpec& spec, const std::vector<int64_t>& shape) {
  if (shape.size() != 3) {
    throw Error(where_of(spec) + " needs an image-shaped input (height, width, channels), got a flat vector",
                "put it before Flatten / global pooling");
  }
}

class RescalingImpl : public LayerImpl {
 public:
  explicit RescalingImpl(const LayerSpec& spec)
      : LayerImpl("Rescaling"), scale_(spec.get_double("scale", 1.0)), offset_(spec.get_double("offset", 0.0)) {
    if (!spec.has("scale")) throw Error(where_of(spec) + ": `scale` is required");
  }
  torch::Tensor forward(torch::Tensor x) override { return x * scale_ + offset_; }
  bool is_deterministic_when_frozen() const override { return true; }
  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value scaled = g.node("Mul", {x.name, g.constant("rescaling.scale", torch::tensor(static_cast<float>(scale_)))},
                                {}, x.sample * scale_);
    if (offset_ == 0) return scaled;
    return g.node("Add", {scaled.name, g.constant("rescaling.offset", torch::tensor(static_cast<float>(offset_)))}, {},
                  forward(x.sample));
  }

 private:
  double scale_, offset_;
};

std::vector<double> three_numbers(const LayerSpec& spec, const char* key) {
  if (!spec.params.contains(key)) throw Error(where_of(spec) + ": `" + key + "` is required (three numbers)");
  const auto& v = spec.params[key];
  if (!v.is_array() || v.size() != 3) throw Error(where_of(spec) + ": `" + key + "` must be three numbers (R, G, B)");
  std::vector<double> out;
  for (const auto& e : v) {
    if (!e.is_number()) throw Error(where_of(spec) + ": `" + key + "` must be three numbers (R, G, B)");
    out.push_back(e.get<double>());
  }
  return out;
}

// (x * scale - mean) / std per channel; torchvision's ImageNet preprocessing
// is scale 1/255, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
class NormalizationImpl : public LayerImpl {
 public:
  explicit NormalizationImpl(const LayerSpec& spec) : LayerImpl("Normalization") {
    auto mean = three_numbers(spec, "mean"), std = three_numbers(spec, "std");
    const double scale = spec.get_double("scale", 1.0 / 255.0);
    for (double s : std) {
      if (!(s > 0)) throw Error(where_of(spec) + ": `std` values must be positive");
    }
    // Folded into one multiply-add: x * (scale/std) - mean/std.
    auto mul = torch::tensor({scale / std[0], scale / std[1], scale / std[2]}, torch::kFloat32).view({1, 3, 1, 1});
    auto add = torch::tensor({-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]}, torch::kFloat32)
                   .view({1, 3, 1, 1});
    mul_ = register_buffer("mul", mul);
    add_ = register_buffer("add", add);
  }
  torch::Tensor forward(torch::Tensor x) override { return x * mul_.to(x.dtype()) + add_.to(x.dtype()); }
  bool is_deterministic_when_frozen() const override { return true; }
  Value export_onnx(GraphWriter& g, const Value& x) override {
    return export_channel_affine(g, "normalization", mul_, add_, x);
  }

 private:
  torch::Tensor mul_, add_;
};

std::pair<double, double> factor_range(const LayerSpec& spec, const char* key, bool required) {
  if (!spec.params.contains(key)) {
    if (required) throw Error(where_of(spec) + ": `" + key + "` is required");
    return {0.0, 0.0};
  }
  const auto& v = spec.params[key];
  if (v.is_number()) {
    const double f = v.get<double>();
    return {-std::abs(f), std::abs(f)};
  }
  if (v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number()) {
    double lo = v[0].get<double>(), hi = v[1].get<double>();
    if (lo > hi) throw Error(where_of(spec) + ": `" + key + "` range [lo, hi] has lo > hi");
    return {lo, hi};
  }
  throw Error(where_of(spec) + ": `" + key + "` must be a number or [lo, hi]");
}

class AugmentationImpl : public LayerImpl {
 public:
  using LayerImpl::LayerImpl;
  bool is_augmentation() const override { return true; }
  Value export_onnx(GraphWriter&, const Value& x) override { return x; }  // training only
};

class RandomFlipImpl : public AugmentationImpl {
 public:
  explicit RandomFlipImpl(const LayerSpec& spec) : AugmentationImpl("RandomFlip") {
    const std::string mode = spec.get_string("mode", "horizontal_and_vertical");
    if (mode == "horizontal") {
      horizontal_ = true;
    } else if (mode == "vertical") {
      vertical_ = true;
    } else if (mode == "horizontal_and_vertical" || mode == "both") {
      horizontal_ = vertical_ = true;
    } else {
      throw Error(where_of(spec) + ": unknown mode '" + mode + "'", "use horizontal, vertical or both");
    }
  }
  torch::Tensor forward(torch::Tensor x) override { return random_flip(x, horizontal_, vertical_); }

 private:
  bool horizontal_ = false, vertical_ = false;
};

class RandomAffineImpl : public AugmentationImpl {
 public:
  RandomAffineImpl(const std::string& type, AffineAugment aug) : AugmentationImpl(type), aug_(aug) {}
  torch::Tensor forward(torch::Tensor x) override { return random_affine(x, aug_); }

 private:
  AffineAugment aug_;
};

Layer make_affine(const LayerSpec& spec) {
  AffineAugment aug;
  const std::string fill = spec.get_string("fill_mode", "reflect");
  try {
    aug.fill = parse_fill_mode(fill);
  } catch (const Error& e) {
    throw Error(where_of(spec) + ": " + e.what(), e.hint());
  }
  if (spec.type == "RandomRotation") {
    aug.rotate = true;
    aug.rotation = factor_range(spec, "factor", true);
  } else if (spec.type == "RandomZoom") {
    aug.zoom = true;
    aug.zoom_height = factor_range(spec, "height_factor", true);
    aug.zoom_keep_aspect = !spec.has("width_factor");
    aug.zoom_width = aug.zoom_keep_aspect ? aug.zoom_height : factor_range(spec, "width_factor", false);
    if (aug.zoom_height.first <= -1.0 || aug.zoom_width.first <= -1.0) {
      throw Error(where_of(spec) + ": zoom factors must be greater than -1");
    }
  } else {
    aug.translate = true;
    aug.translate_height = factor_range(spec, "height_factor", true);
    aug.translate_width = factor_range(spec, "width_factor", spec.has("width_factor"));
  }
  return std::make_shared<RandomAffineImpl>(spec.type, aug);
}

class RandomContrastImpl : public AugmentationImpl {
 public:
  explicit RandomContrastImpl(const LayerSpec& spec) : AugmentationImpl("RandomContrast") {
    auto r = factor_range(spec, "factor", true);
    range_ = {1.0 + r.first, 1.0 + r.second};
    if (range_.first < 0) throw Error(where_of(spec) + ": `factor` must keep the contrast factor >= 0");
  }
  torch::Tensor forward(torch::Tensor x) override { return random_contrast(x, range_); }

 private:
  std::pair<double, double> range_;
};

// The torchvision-style layers below report bad settings as UsageErrors that
// name the layer and the accepted values.
[[noreturn]] void bad_setting(const LayerSpec& spec, const std::string& what, const std::string& hint = "") {
  throw UsageError(where_of(spec) + ": " + what, hint);
}

// A [lo, hi] pair of numbers, or nullopt when `key` is absent.
std::optional<std::pair<double, double>> number_pair(const LayerSpec& spec, const char* key) {
  if (!spec.params.contains(key)) return std::nullopt;
  const auto& v = spec.params[key];
  if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number()) {
    bad_setting(spec, std::string("`") + key + "` must be [lo, hi]");
  }
  return std::make_pair(v[0].get<double>(), v[1].get<double>());
}

// The pixel values the layer sees, [0, 255] unless the model rescales before
// it (the network fills this in from its Rescaling layers; see network.cpp).
std::pair<double, double> value_range_of(const LayerSpec& spec) {
  auto r = number_pair(spec, "value_range").value_or(std::make_pair(0.0, 255.0));
  if (!(r.first < r.second)) bad_setting(spec, "`value_range` must be [lo, hi] with lo < hi", "e.g. [0, 255]");
  return r;
}

bool bilinear_of(const LayerSpec& spec) {
  const std::string mode = spec.get_string("interpolation", "nearest");
  if (mode != "nearest" && mode != "bilinear") bad_setting(spec, "unknown interpolation '" + mode + "'", "use nearest or bilinear");
  return mode == "bilinear";
}

int64_t int_setting(const LayerSpec& spec, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  if (spec.has(key) && !spec.params[key].is_number_integer()) bad_setting(spec, std::string("`") + key + "` must be an integer");
  const int64_t v = spec.get_int(key, fallback);
  if (v < lo || v > hi) {
    bad_setting(spec, std::string("`") + key + "` = " + std::to_string(v) + " is out of range",
                "use " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

// The trainer runs the model under autocast; the torchvision-style layers
// keep float32 there (a half-precision sampling grid is off by fractions of a
// pixel, and the colour ops clamp and quantise), and give float32 back.
class AutocastPause {
 public:
  explicit AutocastPause(const torch::Device& device)
      : type_(device.type()), was_(torch_compat::autocast_enabled(type_)) {
    if (was_) torch_compat::set_autocast_enabled(type_, false);
  }
  ~AutocastPause() {
    if (was_) torch_compat::set_autocast_enabled(type_, true);
  }
  AutocastPause(const AutocastPause&) = delete;
  AutocastPause& operator=(const AutocastPause&) = delete;

 private:
  c10::DeviceType type_;
  bool was_;
};

// Layers whose ops are defined on unit images: the layer maps its value range
// to [0, 1] and back around them.
class UnitRangeAugmentationImpl : public AugmentationImpl {
 public:
  UnitRangeAugmentationImpl(const std::string& type, const LayerSpec& spec)
      : AugmentationImpl(type), range_(value_range_of(spec)) {}
  torch::Tensor forward(torch::Tensor x) override {
    AutocastPause full_precision(x.device());
    const double span = range_.second - range_.first;
    return augment_unit((x - range_.first) / span) * span + range_.first;
  }

 protected:
  virtual torch::Tensor augment_unit(const torch::Tensor& u) = 0;

 private:
  std::pair<double, double> range_;
};

class RandomResizedCropImpl : public AugmentationImpl {
 public:
  explicit RandomResizedCropImpl(const LayerSpec& spec) : AugmentationImpl("RandomResizedCrop") {
    if (spec.has("scale") && spec.params["scale"].is_number()) {
      scale_ = {spec.get_double("scale", 0.08), 1.0};
    } else {
      scale_ = number_pair(spec, "scale").value_or(scale_);
    }
    ratio_ = number_pair(spec, "ratio").value_or(ratio_);
    if (!(scale_.first > 0 && scale_.first <= scale_.second && scale_.second <= 1)) {
      bad_setting(spec, "`scale` must be area fractions 0 < lo <= hi <= 1", "e.g. scale = [0.08, 1.0]");
    }
    if (!(ratio_.first > 0 && ratio_.first <= ratio_.second)) {
      bad_setting(spec, "`ratio` must be aspect ratios 0 < lo <= hi", "e.g. ratio = [0.75, 1.3333]");
    }
  }
  torch::Tensor forward(torch::Tensor x) override {
    AutocastPause full_precision(x.device());
    auto boxes = random_resized_crop_boxes(x.size(0), x.size(2), x.size(3), scale_, ratio_, x.device());
    return resized_crop(x, boxes);
  }

 private:
  std::pair<double, double> scale_{0.08, 1.0}, ratio_{3.0 / 4.0, 4.0 / 3.0};
};

class RandomColorJitterImpl : public UnitRangeAugmentationImpl {
 public:
  explicit RandomColorJitterImpl(const LayerSpec& spec) : UnitRangeAugmentationImpl("RandomColorJitter", spec) {
    ranges_.brightness = factor_around_one(spec, "brightness_factor");
    ranges_.contrast = factor_around_one(spec, "contrast_factor");
    ranges_.saturation = factor_around_one(spec, "saturation_factor");
    if (spec.has("hue_factor")) {
      auto h = spec.params["hue_factor"].is_number() ? std::make_pair(-spec.get_double("hue_factor", 0), spec.get_double("hue_factor", 0))
                                                     : *number_pair(spec, "hue_factor");
      if (!(h.first <= h.second && h.first >= -0.5 && h.second <= 0.5)) {
        bad_setting(spec, "`hue_factor` must be h in [0, 0.5] or [lo, hi] within [-0.5, 0.5]");
      }
      ranges_.hue = h;
    }
    if (!spec.has("brightness_factor") && !spec.has("contrast_factor") && !spec.has("saturation_factor") &&
        !spec.has("hue_factor")) {
      bad_setting(spec, "no factor given", "set brightness_factor, contrast_factor, saturation_factor or hue_factor");
    }
  }

 protected:
  torch::Tensor augment_unit(const torch::Tensor& u) override { return random_color_jitter(u, ranges_); }

 private:
  // torchvision's convention: f means [max(0, 1 - f), 1 + f].
  static std::pair<double, double> factor_around_one(const LayerSpec& spec, const char* key) {
    if (!spec.has(key)) return {1.0, 1.0};
    std::pair<double, double> r;
    if (spec.params[key].is_number()) {
      const double f = spec.get_double(key, 0);
      if (f < 0) bad_setting(spec, std::string("`") + key + "` must not be negative");
      r = {std::max(0.0, 1.0 - f), 1.0 + f};
    } else {
      r = *number_pair(spec, key);
    }
    if (!(r.first >= 0 && r.first <= r.second)) bad_setting(spec, std::string("`") + key + "` must be 0 <= lo <= hi");
    return r;
  }
  ColorJitterRanges ranges_;
};

// TrivialAugmentWide (one op per image, a random magnitude bin) and
// RandAugment (num_ops ops per image at one magnitude bin) share torchvision's op set.
class OpPolicyImpl : public UnitRangeAugmentationImpl {
 public:
  explicit OpPolicyImpl(const LayerSpec& spec)
      : UnitRangeAugmentationImpl(spec.type, spec),
        trivial_(spec.type == "TrivialAugmentWide"),
        bins_(int_setting(spec, "num_magnitude_bins", 31, 2, 1000)),
        bilinear_(bilinear_of(spec)) {
    if (!trivial_) {
      num_ops_ = int_setting(spec, "num_ops", 2, 1, 16);
      magnitude_ = int_setting(spec, "magnitude", 9, 0, bins_ - 1);
    }
  }

 protected:
  torch::Tensor augment_unit(const torch::Tensor& u) override {
    return trivial_ ? trivial_augment_wide(u, bins_, bilinear_) : rand_augment(u, num_ops_, magnitude_, bins_, bilinear_);
  }

 private:
  bool trivial_;
  int64_t bins_, num_ops_ = 0, magnitude_ = 0;
  bool bilinear_;
};

class PoolingImpl : public LayerImpl {
 public:
  PoolingImpl(const LayerSpec& spec, bool max) : LayerImpl(spec.type), max_(max) {
    auto pool = spec.get_pair("pool_size", {2, 2});
    auto stride = spec.get_pair("strides", pool);
    ph_ = pool.first;
    pw_ = pool.second;
    sh_ = stride.first;
    sw_ = stride.second;
    require_positive(spec, "pool_size", std::min(ph_, pw_));
    require_positive(spec, "strides", std::min(sh_, sw_));
    same_ = get_padding(spec) == "same";
  }
  bool is_deterministic_when_frozen() const override { return true; }
  Value export_onnx(GraphWriter& g, const Value& x) override {
    std::vector<int64_t> pads = {0, 0, 0, 0};
    if (same_) {
      auto [top, bottom] = same_padding(x.sample.size(2), ph_, sh_);
      auto [left, right] = same_padding(x.sample.size(3), pw_, sw_);
      pads = {top, left, bottom, right};
    }
    std::vector<Attr> attrs = {{"kernel_shape", std::vector<int64_t>{ph_, pw_}},
                               {"strides", std::vector<int64_t>{sh_, sw_}},
                               {"pads", pads}};
    // ONNX pads a max pool with -inf and, without count_include_pad, averages real pixels only: TensorFlow's "same".
    if (!max_) attrs.push_back({"count_include_pad", int64_t{0}});
    return g.node(max_ ? "MaxPool" : "AveragePool", {x.name}, attrs, forward(x.sample));
  }
  torch::Tensor forward(torch::Tensor x) override {
    // x is (B,C,H,W)
    if (!same_) {
      return max_ ? F::max_pool2d(x, F::MaxPool2dFuncOptions({ph_, pw_}).stride({sh_, sw_}))
                  : F::avg_pool2d(x, F::AvgPool2dFuncOptions({ph_, pw_}).stride({sh_, sw_}));
    }
    auto [top, bottom] = same_padding(x.size(2), ph_, sh_);
    auto [left, right] = same_padding(x.size(3), pw_, sw_);
    if (max_) {
      auto padded = F::pad(x, F::PadFuncOptions({left, right, top, bottom}).value(-INFINITY));
      return F::max_pool2d(padded, F::MaxPool2dFuncOptions({ph_, pw_}).stride({sh_, sw_}));
    }
    // TensorFlow averages only over the real pixels of a padded window.
    auto pad = F::PadFuncOptions({left, right, top, bottom});
    auto sums = F::avg_pool2d(F::pad(x, pad), F::AvgPool2dFuncOptions({ph_, pw_}).stride({sh_, sw_}));
    auto ones = torch::ones({1, 1, x.size(2), x.size(3)}, x.options());
    auto counts = F::avg_pool2d(F::pad(ones, pad), F::AvgPool2dFuncOptions({ph_, pw_}).stride({sh_, sw_}));
    return sums / counts;
  }

 private:
  bool max_;
  bool same_;
  int64_t ph_, pw_, sh_, sw_;
};

class GlobalPoolingImpl : public LayerImpl {
 public:
  GlobalPoolingImpl(const std::string& type, bool max) : LayerImpl(type), max_(max) {}
  bool is_deterministic_when_frozen() const override { return true; }
  torch::Tensor forward(torch::Tensor x) override {
    // x is (B,C,H,W) -> (B,C)
    return max_ ? std::get<0>(x.flatten(2).max(2)) : x.mean({2, 3});
  }
  Value export_onnx(GraphWriter& g, const Value& x) override {
    const torch::Tensor pooled = forward(x.sample);
    const Value p = g.node(max_ ? "GlobalMaxPool" : "GlobalAveragePool", {x.name}, {}, pooled.view({pooled.size(0), -1, 1, 1}));
    return g.node("Flatten", {p.name}, {{"axis", int64_t{1}}}, pooled);
  }

 private:
  bool max_;
};

class FlattenImpl : public LayerImpl {
 public:
  FlattenImpl() : LayerImpl("Flatten") {}
  torch::Tensor forward(torch::Tensor x) override { return x.flatten(1); }
  bool is_deterministic_when_frozen() const override { return true; }
  Value export_onnx(GraphWriter& g, const Value& x) override { return export_flatten(g, x); }
};

class DropoutImpl : public LayerImpl {
 public:
  explicit DropoutImpl(const LayerSpec& spec) : LayerImpl("Dropout"), rate_(spec.get_double("rate", -1)) {
    if (!spec.has("rate")) throw Error(where_of(spec) + ": `rate` is required");
    if (rate_ < 0 || rate_ >= 1) throw Error(where_of(spec) + ": `rate` must be in [0, 1)");
  }
  torch::Tensor forward(torch::Tensor x) override { return F::dropout(x, F::DropoutFuncOptions().p(rate_).training(is_training())); }
  Value export_onnx(GraphWriter&, const Value& x) override { return x; }  // identity at inference

 private:
  double rate_;
};

class BatchNormalizationImpl : public LayerImpl {
 public:
  BatchNormalizationImpl(const LayerSpec& spec, int64_t channels) : LayerImpl("BatchNormalization") {
    // Keras' momentum is the weight of the old running value; PyTorch's is the new one's.
    momentum_ = 1.0 - spec.get_double("momentum", 0.99);
    eps_ = spec.get_double("epsilon", 1e-3);
    if (momentum_ < 0 || momentum_ > 1) throw Error(where_of(spec) + ": `momentum` must be in [0, 1]");
    weight_ = register_parameter("weight", torch::ones({channels}));
    bias_ = register_parameter("bias", torch::zeros({channels}));
    running_mean_ = register_buffer("running_mean", torch::zeros({channels}));
    running_var_ = register_buffer("running_var", torch::ones({channels}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", torch::zeros({}, torch::kLong));
  }
  torch::Tensor forward(torch::Tensor x) override {
    if (is_training()) {
      torch::NoGradGuard no_grad;
      num_batches_tracked_.add_(1);
    }
    return torch::batch_norm(x, weight_, bias_, running_mean_, running_var_, is_training(), momentum_, eps_,
                             /*cudnn_enabled=*/true);
  }
  Value export_onnx(GraphWriter& g, const Value& x) override {
    // ONNX BatchNormalization takes (N, C) and (N, C, H, W) alike.
    return g.node("BatchNormalization",
                  {x.name, g.constant("bn.scale", weight_.detach()), g.constant("bn.bias", bias_.detach()),
                   g.constant("bn.mean", running_mean_), g.constant("bn.var", running_var_)},
                  {{"epsilon", static_cast<float>(eps_)}}, forward(x.sample));
  }

 private:
  double momentum_, eps_;
  torch::Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

// A ResNet basic block (He et al. 2015; torchvision's BasicBlock): two 3x3
// convolutions with batch norm, added to the block's input (through a strided
// 1x1 convolution with batch norm where the shape changes), then ReLU. Keras
// spells this with its functional API, which a list of layers cannot; as one
// layer it lets a model file describe a small ResNet. Kernels are He-normal and
// the second batch norm's scale starts at zero ("zero_init_residual", as in
// Goyal et al. 2017 and torchvision's option), so each block starts as the
// identity and a deep stack trains from its first batch like a shallow one.
class ResidualBlockImpl : public LayerImpl {
 public:
  ResidualBlockImpl(const LayerSpec& spec, int64_t in_channels) : LayerImpl("ResidualBlock") {
    if (!spec.has("filters")) throw Error(where_of(spec) + ": `filters` is required");
    const int64_t filters = spec.get_int("filters", 0);
    require_positive(spec, "filters", filters);
    const auto strides = spec.get_pair("strides", {1, 1});
    require_positive(spec, "strides", std::min(strides.first, strides.second));
    // PyTorch's batch-norm defaults (momentum 0.1, eps 1e-5), in Keras' spelling.
    nlohmann::json bn_params = {{"momentum", spec.get_double("momentum", 0.9)},
                                {"epsilon", spec.get_double("epsilon", 1e-5)}};
    const auto conv_spec = [&](const char* name, int64_t kernel, std::pair<int64_t, int64_t> s) {
      return LayerSpec{"Conv2D", spec.name + "." + name,
                       {{"filters", filters},
                        {"kernel_size", kernel},
                        {"strides", std::vector<int64_t>{s.first, s.second}},
                        {"padding", "same"},
                        {"use_bias", false}}};
    };
    const LayerSpec bn_spec{"BatchNormalization", spec.name, bn_params};
    conv1_ = register_module("conv1", std::make_shared<Conv2DImpl>(conv_spec("conv1", 3, strides), in_channels));
    bn1_ = register_module("bn1", std::make_shared<BatchNormalizationImpl>(bn_spec, filters));
    conv2_ = register_module("conv2", std::make_shared<Conv2DImpl>(conv_spec("conv2", 3, {1, 1}), filters));
    bn2_ = register_module("bn2", std::make_shared<BatchNormalizationImpl>(bn_spec, filters));
    if (in_channels != filters || strides != std::make_pair<int64_t, int64_t>(1, 1)) {
      // torchvision names the projection shortcut downsample.0 / downsample.1.
      projection_ = std::make_shared<Conv2DImpl>(conv_spec("downsample", 1, strides), in_channels);
      projection_bn_ = std::make_shared<BatchNormalizationImpl>(bn_spec, filters);
      auto downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
      downsample->register_module("0", projection_);
      downsample->register_module("1", projection_bn_);
    }
    torch::NoGradGuard no_grad;
    for (auto& p : parameters()) {
      if (p.dim() == 4) torch::nn::init::kaiming_normal_(p, 0.0, torch::kFanOut, torch::kReLU);
    }
    if (spec.get_bool("zero_init_residual", true)) bn2_->named_parameters()["weight"].zero_();
  }

  torch::Tensor forward(torch::Tensor x) override {
    torch::Tensor y = bn2_->forward(conv2_->forward(torch::relu(bn1_->forward(conv1_->forward(x)))));
    torch::Tensor shortcut = projection_ ? projection_bn_->forward(projection_->forward(x)) : x;
    return torch::relu(y + shortcut);
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value h = export_activation(g, ActivationKind::ReLU, bn1_->export_onnx(g, conv1_->export_onnx(g, x)));
    const Value y = bn2_->export_onnx(g, conv2_->export_onnx(g, h));
    const Value shortcut = projection_ ? projection_bn_->export_onnx(g, projection_->export_onnx(g, x)) : x;
    const Value sum = g.node("Add", {y.name, shortcut.name}, {}, y.sample + shortcut.sample);
    return export_activation(g, ActivationKind::ReLU, sum);
  }

 private:
  std::shared_ptr<Conv2DImpl> conv1_, conv2_, projection_;
  std::shared_ptr<BatchNormalizationImpl> bn1_, bn2_, projection_bn_;
};

}  // namespace

Conv2DImpl::Conv2DImpl(const LayerSpec& spec, int64_t in_channels) : LayerImpl("Conv2D") {
  if (!spec.has("filters")) throw Error(where_of(spec) + ": `filters` is required");
  const int64_t filters = spec.get_int("filters", 0);
  require_positive(spec, "filters", filters);
  auto k = spec.get_pair("kernel_size", {3, 3});
  auto s = spec.get_pair("strides", {1, 1});
  kh_ = k.first;
  kw_ = k.second;
  sh_ = s.first;
  sw_ = s.second;
  require_positive(spec, "kernel_size", std::min(kh_, kw_));
  require_positive(spec, "strides", std::min(sh_, sw_));
  same_ = get_padding(spec) == "same";
  activation_ = parse_activation(spec.get_string("activation", "none"), where_of(spec));
  weight_ = register_parameter("weight", torch::empty({filters, in_channels, kh_, kw_}));
  glorot_uniform_(weight_, in_channels * kh_ * kw_, filters * kh_ * kw_);
  if (spec.get_bool("use_bias", true)) bias_ = register_parameter("bias", torch::zeros({filters}));
}

torch::Tensor Conv2DImpl::forward(torch::Tensor x) { return apply_activation(activation_, preactivation(x)); }

torch::Tensor Conv2DImpl::preactivation(torch::Tensor x) {
  // x is (B,Cin,H,W) -> (B,filters,H',W')
  std::vector<int64_t> padding = {0, 0};
  if (same_) {
    auto [top, bottom] = same_padding(x.size(2), kh_, sh_);
    auto [left, right] = same_padding(x.size(3), kw_, sw_);
    if (top == bottom && left == right) {
      padding = {top, left};
    } else {
      x = F::pad(x, F::PadFuncOptions({left, right, top, bottom}));
    }
  }
  return torch::conv2d(x, weight_, bias_, {sh_, sw_}, padding);
}

Value Conv2DImpl::export_onnx(GraphWriter& g, const Value& x) {
  std::vector<int64_t> pads = {0, 0, 0, 0};
  if (same_) {
    auto [top, bottom] = same_padding(x.sample.size(2), kh_, sh_);
    auto [left, right] = same_padding(x.sample.size(3), kw_, sw_);
    pads = {top, left, bottom, right};
  }
  std::vector<std::string> inputs = {x.name, g.constant("conv2d.weight", weight_.detach())};
  if (bias_.defined()) inputs.push_back(g.constant("conv2d.bias", bias_.detach()));
  const Value conv = g.node("Conv", inputs,
                            {{"kernel_shape", std::vector<int64_t>{kh_, kw_}},
                             {"strides", std::vector<int64_t>{sh_, sw_}},
                             {"pads", pads}},
                            preactivation(x.sample));
  return export_activation(g, activation_, conv);
}

DenseImpl::DenseImpl(const LayerSpec& spec, int64_t in_features, int64_t num_classes) : LayerImpl("Dense") {
  units_ = spec.has("units") ? spec.get_int("units", 0) : num_classes;
  require_positive(spec, "units", units_);
  activation_ = parse_activation(spec.get_string("activation", "none"), where_of(spec));
  weight_ = register_parameter("weight", torch::empty({units_, in_features}));
  glorot_uniform_(weight_, in_features, units_);
  if (spec.get_bool("use_bias", true)) bias_ = register_parameter("bias", torch::zeros({units_}));
}

torch::Tensor DenseImpl::forward(torch::Tensor x) {
  // x is (B,F) -> (B,units)
  return apply_activation(activation_, torch::linear(x, weight_, bias_));
}

Value DenseImpl::export_onnx(GraphWriter& g, const Value& x) {
  std::vector<std::string> inputs = {x.name, g.constant("dense.weight", weight_.detach())};
  if (bias_.defined()) inputs.push_back(g.constant("dense.bias", bias_.detach()));
  const torch::Tensor logits = torch::linear(x.sample, weight_, bias_);
  return export_activation(g, activation_, g.node("Gemm", inputs, {{"transB", int64_t{1}}}, logits));
}

ActivationLayerImpl::ActivationLayerImpl(const LayerSpec& spec) : LayerImpl("Activation") {
  if (!spec.has("activation")) throw Error(where_of(spec) + ": `activation` is required");
  activation_ = parse_activation(spec.get_string("activation", "none"), where_of(spec));
}

Layer make_layer(const LayerSpec& spec, const std::vector<int64_t>& input_shape, int64_t num_classes) {
  const std::string& t = spec.type;
  auto image_layer = [&] { require_4d(spec, input_shape); };
  if (t == "Rescaling") return std::make_shared<RescalingImpl>(spec);
  if (t == "Normalization") {
    image_layer();
    if (input_shape[0] != 3) throw Error(where_of(spec) + ": needs a 3-channel image input");
    return std::make_shared<NormalizationImpl>(spec);
  }
  if (t == "RandomFlip") {
    image_layer();
    return std::make_shared<RandomFlipImpl>(spec);
  }
  if (t == "RandomRotation" || t == "RandomZoom" || t == "RandomTranslation") {
    image_layer();
    return make_affine(spec);
  }
  if (t == "RandomContrast") {
    image_layer();
    return std::make_shared<RandomContrastImpl>(spec);
  }
  if (t == "RandomResizedCrop" || t == "RandomColorJitter" || t == "TrivialAugmentWide" || t == "RandAugment") {
    image_layer();
    if (input_shape[0] != 3) throw UsageError(where_of(spec) + ": needs a 3-channel (RGB) image input");
    if (t == "RandomResizedCrop") return std::make_shared<RandomResizedCropImpl>(spec);
    if (t == "RandomColorJitter") return std::make_shared<RandomColorJitterImpl>(spec);
    return std::make_shared<OpPolicyImpl>(spec);
  }
  if (t == "Conv2D") {
    image_layer();
    return std::make_shared<Conv2DImpl>(spec, input_shape[0]);
  }
  if (t == "MaxPooling2D" || t == "AveragePooling2D") {
    image_layer();
    return std::make_shared<PoolingImpl>(spec, t == "MaxPooling2D");
  }
  if (t == "GlobalAveragePooling2D" || t == "GlobalMaxPooling2D") {
    image_layer();
    return std::make_shared<GlobalPoolingImpl>(t, t == "GlobalMaxPooling2D");
  }
  if (t == "Flatten") return std::make_shared<FlattenImpl>();
  if (t == "Dense") {
    if (input_shape.size() != 1) {
      throw Error(where_of(spec) + " needs a flat input, but the previous layer outputs an image-shaped tensor",
                  "add a Flatten or GlobalAveragePooling2D layer before it (after a backbone: pooling = \"avg\")");
    }
    return std::make_shared<DenseImpl>(spec, input_shape[0], num_classes);
  }
  if (t == "Dropout") return std::make_shared<DropoutImpl>(spec);
  if (t == "BatchNormalization") return std::make_shared<BatchNormalizationImpl>(spec, input_shape[0]);
  if (t == "Activation") return std::make_shared<ActivationLayerImpl>(spec);
  if (t == "ResidualBlock") {
    image_layer();
    return std::make_shared<ResidualBlockImpl>(spec, input_shape[0]);
  }
  throw Error(where_of(spec) + ": this layer type cannot be built here");
}

std::vector<int64_t> infer_output_shape(LayerImpl& layer, const std::vector<int64_t>& input_shape) {
  torch::NoGradGuard no_grad;
  const bool was_training = layer.is_training();
  layer.eval();
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  torch::Tensor y;
  try {
    y = layer.forward(torch::zeros(shape));
  } catch (const c10::Error& e) {
    layer.train(was_training);
    std::string msg = e.what_without_backtrace();
    throw Error("the input is too small for layer type " + layer.type() + ": " + msg.substr(0, msg.find('\n')),
                "use a larger --image-size or fewer pooling layers");
  }
  layer.train(was_training);
  if (y.numel() == 0) {
    throw Error("layer type " + layer.type() + " produces an empty output for this input size",
                "use a larger --image-size or fewer pooling layers");
  }
  auto sizes = y.sizes();
  return std::vector<int64_t>(sizes.begin() + 1, sizes.end());
}

}  // namespace tabby::nn
