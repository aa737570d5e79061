// EfficientNet B0-B3 and EfficientNetV2-S as torchvision builds them:
// features.0 stem conv (SiLU), then one Sequential per stage of the papers'
// tables ("features.S.N.block.*": MBConv with squeeze-excitation
// "block.2.fc1/fc2", or V2's FusedMBConv), then a 1x1 conv (SiLU) to 4x the
// last stage's channels (1280 for V2); classifier = Dropout → Linear.
// B0-B3 scale the base table by width (channels rounded to multiples of 8)
// and depth (ceil). Batch norm eps 1e-5 for V1, 1e-3 for V2, momentum 0.1.
// Residual branches carry stochastic depth growing linearly with the
// block's index to the registry's probability.
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

#include <cmath>

namespace tabby::nn::zoo {

namespace {

// One row of Table 1 (EfficientNet) or Table 4 (EfficientNetV2).
struct EfficientStage {
  bool fused;  // FusedMBConv (V2's early stages) else MBConv
  double expand_ratio;
  int64_t kernel, stride, in, out, layers;
};

struct EfficientVariant {
  double width = 1.0, depth = 1.0;
  double dropout;
  NormSettings norm;
  std::vector<EfficientStage> stages;
  int64_t last_channels = 0;  // 0: 4x the last stage's
};

std::vector<EfficientStage> efficientnet_v1_stages() {
  return {{false, 1, 3, 1, 32, 16, 1},  {false, 6, 3, 2, 16, 24, 2},   {false, 6, 5, 2, 24, 40, 2},
          {false, 6, 3, 2, 40, 80, 3},  {false, 6, 5, 1, 80, 112, 3},  {false, 6, 5, 2, 112, 192, 4},
          {false, 6, 3, 1, 192, 320, 1}};
}

std::vector<EfficientStage> efficientnet_v2_s_stages() {
  return {{true, 1, 3, 1, 24, 24, 2},    {true, 4, 3, 2, 24, 48, 4},     {true, 4, 3, 2, 48, 64, 4},
          {false, 4, 3, 2, 64, 128, 6},  {false, 6, 3, 1, 128, 160, 9},  {false, 6, 3, 2, 160, 256, 15}};
}

// One block's shape after scaling.
struct MBBlockShape {
  bool fused;
  int64_t in, out, expanded, kernel, stride;
};

// MBConv (expand 1x1 → depthwise → squeeze-excitation → project 1x1) or
// FusedMBConv (expanding kxk conv → project 1x1, or a single kxk conv when
// nothing expands), under "block"; stochastic depth on the residual branch.
class MBConvImpl : public torch::nn::Module, public OnnxExportable {
 public:
  MBConvImpl(const MBBlockShape& s, double stochastic_depth, const NormSettings& norm)
      : use_residual_(s.stride == 1 && s.in == s.out) {
    if (s.fused) {
      if (s.expanded != s.in) {
        block_->push_back(conv_norm_activation(s.in, s.expanded, s.kernel, s.stride, 1, Activation::SiLU, norm));
        block_->push_back(conv_norm_activation(s.expanded, s.out, 1, 1, 1, Activation::None, norm));
      } else {
        block_->push_back(conv_norm_activation(s.in, s.out, s.kernel, s.stride, 1, Activation::SiLU, norm));
      }
    } else {
      if (s.expanded != s.in)
        block_->push_back(conv_norm_activation(s.in, s.expanded, 1, 1, 1, Activation::SiLU, norm));
      block_->push_back(
          conv_norm_activation(s.expanded, s.expanded, s.kernel, s.stride, s.expanded, Activation::SiLU, norm));
      block_->push_back(SqueezeExcitation(s.expanded, std::max<int64_t>(1, s.in / 4), Activation::SiLU, Gate::Sigmoid));
      block_->push_back(conv_norm_activation(s.expanded, s.out, 1, 1, 1, Activation::None, norm));
    }
    register_module("block", block_);
    drop_ = register_module("stochastic_depth", StochasticDepth(stochastic_depth));
  }

  // x is (B,in,H,W) → (B,out,H/stride,W/stride)
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor y = block_->forward(x);
    return use_residual_ ? add_into_fresh(drop_->forward(y), x) : y;
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value y = export_module(g, *block_, x);
    return use_residual_ ? export_add(g, y, x) : y;
  }

 private:
  Chain block_;
  StochasticDepth drop_{nullptr};
  bool use_residual_;
};
TORCH_MODULE(MBConv);

class EfficientNetImpl : public PooledClassifierBackboneImpl {
 public:
  EfficientNetImpl(const std::string& arch, const EfficientVariant& v, const BackboneOptions& o)
      : PooledClassifierBackboneImpl(arch, o.include_top, o.num_classes) {
    auto width = [&](int64_t channels) { return make_divisible(static_cast<double>(channels) * v.width, 8); };
    auto depth = [&](int64_t layers) { return static_cast<int64_t>(std::ceil(static_cast<double>(layers) * v.depth)); };
    int64_t total_blocks = 0;
    for (const auto& stage : v.stages) total_blocks += depth(stage.layers);

    features_->push_back(conv_norm_activation(3, width(v.stages.front().in), 3, 2, 1, Activation::SiLU, v.norm));
    int64_t block_index = 0;
    for (const auto& stage : v.stages) {
      Chain blocks;
      for (int64_t i = 0; i < depth(stage.layers); ++i, ++block_index) {
        MBBlockShape shape{stage.fused, i == 0 ? width(stage.in) : width(stage.out), width(stage.out), 0,
                           stage.kernel, i == 0 ? stage.stride : 1};
        shape.expanded = make_divisible(static_cast<double>(shape.in) * stage.expand_ratio, 8);
        const double drop = *o.stochastic_depth * static_cast<double>(block_index) / static_cast<double>(total_blocks);
        blocks->push_back(MBConv(shape, drop, v.norm));
      }
      features_->push_back(blocks);
    }
    const int64_t last_in = width(v.stages.back().out);
    feature_channels_ = v.last_channels > 0 ? v.last_channels : 4 * last_in;
    features_->push_back(conv_norm_activation(last_in, feature_channels_, 1, 1, 1, Activation::SiLU, v.norm));
    if (o.include_top) classifier_ = Chain(torch::nn::Dropout(v.dropout), torch::nn::Linear(feature_channels_, o.num_classes));
    register_features_and_classifier();
    init_torchvision_style(*this, /*linear_std=*/0.0);
    if (o.include_top) {
      // torchvision: uniform(±1/sqrt(out_features)) for the classifier.
      torch::NoGradGuard no_grad;
      auto* linear = classifier_->ptr(1)->as<torch::nn::Linear>();
      const double range = 1.0 / std::sqrt(static_cast<double>(o.num_classes));
      linear->weight.uniform_(-range, range);
      linear->bias.zero_();
    }
  }

  // The stem, every MBConv block, the last conv; then the classifier's Linear.
  std::vector<std::string> blocks() const override {
    std::vector<std::string> units = {"features.0"};
    for (size_t stage = 1; stage + 1 < features_->size(); ++stage) {
      const size_t count = features_->children()[stage]->children().size();
      for (size_t i = 0; i < count; ++i) units.push_back("features." + std::to_string(stage) + "." + std::to_string(i));
    }
    units.push_back("features." + std::to_string(features_->size() - 1));
    if (include_top()) units.push_back("classifier.1");
    return units;
  }
};

}  // namespace

std::vector<ArchStructure> efficientnet_structures() {
  auto of = [](std::string arch, EfficientVariant v) {
    return ArchStructure{arch, [arch, v](const BackboneOptions& o) -> Backbone {
                           return std::make_shared<EfficientNetImpl>(arch, v, o);
                         }};
  };
  const NormSettings v1_norm{1e-5, 0.1}, v2_norm{1e-3, 0.1};
  return {
      of("efficientnet_b0", {1.0, 1.0, 0.2, v1_norm, efficientnet_v1_stages()}),
      of("efficientnet_b1", {1.0, 1.1, 0.2, v1_norm, efficientnet_v1_stages()}),
      of("efficientnet_b2", {1.1, 1.2, 0.3, v1_norm, efficientnet_v1_stages()}),
      of("efficientnet_b3", {1.2, 1.4, 0.3, v1_norm, efficientnet_v1_stages()}),
      of("efficientnet_v2_s", {1.0, 1.0, 0.2, v2_norm, efficientnet_v2_s_stages(), 1280}),
  };
}

}  // namespace tabby::nn::zoo
