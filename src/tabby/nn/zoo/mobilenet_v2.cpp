// MobileNetV2 (width 1.0) as torchvision builds it: features.0 stem conv,
// features.1..17 inverted-residual blocks ("features.N.conv.*"), features.18
// the 1x1 conv to 1280 channels; classifier = Dropout(0.2), Linear(1280, C).
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

namespace tabby::nn::zoo {

namespace {

// Expand (1x1, skipped when expand_ratio is 1) → depthwise 3x3 → project 1x1 +
// BN without activation; residual when the shape is kept.
class InvertedResidualV2Impl : public torch::nn::Module, public OnnxExportable {
 public:
  InvertedResidualV2Impl(int64_t in, int64_t out, int64_t stride, int64_t expand_ratio) {
    const int64_t hidden = in * expand_ratio;
    use_residual_ = stride == 1 && in == out;
    const NormSettings norm;
    if (expand_ratio != 1) conv_->push_back(conv_norm_activation(in, hidden, 1, 1, 1, Activation::ReLU6, norm));
    conv_->push_back(conv_norm_activation(hidden, hidden, 3, stride, hidden, Activation::ReLU6, norm));
    conv_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, out, 1).bias(false)));
    conv_->push_back(torch::nn::BatchNorm2d(out));
    register_module("conv", conv_);
  }

  // x is (B,in,H,W) → (B,out,H/stride,W/stride)
  torch::Tensor forward(torch::Tensor x) { return use_residual_ ? add_into_fresh(conv_->forward(x), x) : conv_->forward(x); }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value y = export_module(g, *conv_, x);
    return use_residual_ ? export_add(g, x, y) : y;
  }

 private:
  Chain conv_;
  bool use_residual_ = false;
};
TORCH_MODULE(InvertedResidualV2);

class MobileNetV2Impl : public BackboneImpl {
 public:
  static constexpr int64_t kLastChannels = 1280;

  MobileNetV2Impl(bool include_top, int64_t num_classes) : BackboneImpl("mobilenet_v2", include_top, num_classes) {
    // (expand ratio t, channels c, repeats n, first stride s) from the paper.
    const int64_t settings[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2},  {6, 64, 4, 2},
                                    {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    int64_t channels = 32;
    features_->push_back(conv_norm_activation(3, channels, 3, 2, 1, Activation::ReLU6, NormSettings{}));
    for (const auto& [t, c, n, s] : settings) {
      for (int64_t i = 0; i < n; ++i) {
        features_->push_back(InvertedResidualV2(channels, c, i == 0 ? s : 1, t));
        channels = c;
      }
    }
    features_->push_back(conv_norm_activation(channels, kLastChannels, 1, 1, 1, Activation::ReLU6, NormSettings{}));
    register_module("features", features_);
    if (include_top) {
      classifier_ = Chain(torch::nn::Dropout(0.2), torch::nn::Linear(kLastChannels, num_classes));
      register_module("classifier", classifier_);
    }
    init_torchvision_style(*this, /*linear_std=*/0.01);
  }

  // x is (B,3,H,W) → (B,1280,H/32,W/32)
  torch::Tensor forward_features(torch::Tensor x) override { return features_->forward(x); }

  // features (B,1280,h,w) → (B,C)
  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    torch::Tensor pooled = torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1);
    return classifier_->forward(pooled);
  }

  Value export_features(GraphWriter& g, const Value& x) override { return export_module(g, *features_, x); }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_module(g, *classifier_, export_flatten(g, export_global_average_pool(g, features)));
  }

  int64_t feature_channels() const override { return kLastChannels; }

  std::vector<std::string> blocks() const override {
    std::vector<std::string> units;
    for (size_t i = 0; i < features_->size(); ++i) units.push_back("features." + std::to_string(i));
    if (include_top()) units.push_back("classifier.1");
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"classifier"}; }

 private:
  Chain features_;
  Chain classifier_{nullptr};
};

}  // namespace

std::vector<ArchStructure> mobilenet_v2_structures() {
  return {{"mobilenet_v2", [](const BackboneOptions& o) -> Backbone {
             return std::make_shared<MobileNetV2Impl>(o.include_top, o.num_classes);
           }}};
}

}  // namespace tabby::nn::zoo
