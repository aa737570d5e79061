// MobileNetV3 Large and Small (width 1.0) as torchvision builds them:
// features.0 stem conv (hardswish), then one inverted-residual block per row of
// the paper's table ("features.N.block.*", squeeze-excitation as
// "block.K.fc1/fc2"), then a 1x1 conv to 6x the last block's channels;
// classifier = Linear → Hardswish → Dropout(0.2) → Linear. Batch norm uses
// eps 0.001 and momentum 0.01 throughout.
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

namespace tabby::nn::zoo {

namespace {

const NormSettings kNorm{/*eps=*/0.001, /*momentum=*/0.01};

// One row of the paper's Tables 1/2.
struct BlockConfig {
  int64_t in, kernel, expanded, out;
  bool squeeze_excite;
  bool hardswish;  // else ReLU
  int64_t stride;
};

class InvertedResidualV3Impl : public torch::nn::Module, public OnnxExportable {
 public:
  explicit InvertedResidualV3Impl(const BlockConfig& cfg) {
    use_residual_ = cfg.stride == 1 && cfg.in == cfg.out;
    const Activation act = cfg.hardswish ? Activation::Hardswish : Activation::ReLU;
    if (cfg.expanded != cfg.in) block_->push_back(conv_norm_activation(cfg.in, cfg.expanded, 1, 1, 1, act, kNorm));
    block_->push_back(
        conv_norm_activation(cfg.expanded, cfg.expanded, cfg.kernel, cfg.stride, cfg.expanded, act, kNorm));
    if (cfg.squeeze_excite)
      block_->push_back(SqueezeExcitation(cfg.expanded, make_divisible(static_cast<double>(cfg.expanded / 4)),
                                          Activation::ReLU, Gate::Hardsigmoid));
    block_->push_back(conv_norm_activation(cfg.expanded, cfg.out, 1, 1, 1, Activation::None, kNorm));
    register_module("block", block_);
  }

  // x is (B,in,H,W) → (B,out,H/stride,W/stride)
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor y = block_->forward(x);
    return use_residual_ ? y + x : y;
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value y = export_module(g, *block_, x);
    return use_residual_ ? export_add(g, y, x) : y;
  }

 private:
  Chain block_;
  bool use_residual_ = false;
};
TORCH_MODULE(InvertedResidualV3);

const std::vector<BlockConfig>& large_config() {
  static const std::vector<BlockConfig> rows = {
      {16, 3, 16, 16, false, false, 1},    {16, 3, 64, 24, false, false, 2},   {24, 3, 72, 24, false, false, 1},
      {24, 5, 72, 40, true, false, 2},     {40, 5, 120, 40, true, false, 1},   {40, 5, 120, 40, true, false, 1},
      {40, 3, 240, 80, false, true, 2},    {80, 3, 200, 80, false, true, 1},   {80, 3, 184, 80, false, true, 1},
      {80, 3, 184, 80, false, true, 1},    {80, 3, 480, 112, true, true, 1},   {112, 3, 672, 112, true, true, 1},
      {112, 5, 672, 160, true, true, 2},   {160, 5, 960, 160, true, true, 1},  {160, 5, 960, 160, true, true, 1},
  };
  return rows;
}

const std::vector<BlockConfig>& small_config() {
  static const std::vector<BlockConfig> rows = {
      {16, 3, 16, 16, true, false, 2},  {16, 3, 72, 24, false, false, 2}, {24, 3, 88, 24, false, false, 1},
      {24, 5, 96, 40, true, true, 2},   {40, 5, 240, 40, true, true, 1},  {40, 5, 240, 40, true, true, 1},
      {40, 5, 120, 48, true, true, 1},  {48, 5, 144, 48, true, true, 1},  {48, 5, 288, 96, true, true, 2},
      {96, 5, 576, 96, true, true, 1},  {96, 5, 576, 96, true, true, 1},
  };
  return rows;
}

class MobileNetV3Impl : public BackboneImpl {
 public:
  MobileNetV3Impl(bool large, bool include_top, int64_t num_classes)
      : BackboneImpl(large ? "mobilenet_v3_large" : "mobilenet_v3_small", include_top, num_classes) {
    const auto& rows = large ? large_config() : small_config();
    features_->push_back(conv_norm_activation(3, rows.front().in, 3, 2, 1, Activation::Hardswish, kNorm));
    for (const auto& row : rows) features_->push_back(InvertedResidualV3(row));
    feature_channels_ = 6 * rows.back().out;
    features_->push_back(
        conv_norm_activation(rows.back().out, feature_channels_, 1, 1, 1, Activation::Hardswish, kNorm));
    register_module("features", features_);
    if (include_top) {
      const int64_t hidden = large ? 1280 : 1024;
      classifier_ = Chain(torch::nn::Linear(feature_channels_, hidden), Hardswish(),
                                          torch::nn::Dropout(0.2), torch::nn::Linear(hidden, num_classes));
      register_module("classifier", classifier_);
    }
    init_torchvision_style(*this, /*linear_std=*/0.01);
  }

  // x is (B,3,H,W) → (B,960|576,H/32,W/32)
  torch::Tensor forward_features(torch::Tensor x) override { return features_->forward(x); }

  // features (B,C,h,w) → (B,num_classes)
  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return classifier_->forward(torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
  }

  Value export_features(GraphWriter& g, const Value& x) override { return export_module(g, *features_, x); }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_module(g, *classifier_, export_flatten(g, export_global_average_pool(g, features)));
  }

  int64_t feature_channels() const override { return feature_channels_; }

  std::vector<std::string> blocks() const override {
    std::vector<std::string> units;
    for (size_t i = 0; i < features_->size(); ++i) units.push_back("features." + std::to_string(i));
    if (include_top()) units.insert(units.end(), {"classifier.0", "classifier.3"});
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"classifier"}; }

 private:
  Chain features_;
  Chain classifier_{nullptr};
  int64_t feature_channels_ = 0;
};

}  // namespace

std::vector<ArchStructure> mobilenet_v3_structures() {
  auto of_size = [](bool large) {
    return [large](const BackboneOptions& o) -> Backbone {
      return std::make_shared<MobileNetV3Impl>(large, o.include_top, o.num_classes);
    };
  };
  return {{"mobilenet_v3_large", of_size(true)}, {"mobilenet_v3_small", of_size(false)}};
}

}  // namespace tabby::nn::zoo
