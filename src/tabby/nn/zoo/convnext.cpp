// ConvNeXt-Tiny as torchvision builds it: features.0 = 4x4/4 conv + channel
// LayerNorm, then stages of CNBlocks ("features.1.N": depthwise 7x7 conv,
// LayerNorm over channels, Linear 4x, GELU, Linear, times a per-channel
// "layer_scale") with a downsampling LayerNorm + 2x2/2 conv between stages
// (features.2, .4, .6); classifier = LayerNorm → Flatten → Linear after the
// global average. LayerNorm eps 1e-6. The residual branches carry stochastic
// depth growing linearly to the registry's probability at the last block.
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

namespace tabby::nn::zoo {

namespace {

constexpr double kConvNextNormEps = 1e-6;

// torchvision.ops.Permute, which the CNBlock uses to run its LayerNorm and
// Linears on channels-last pixels. No parameters.
class PermuteImpl : public torch::nn::Module {
 public:
  explicit PermuteImpl(std::vector<int64_t> order) : order_(std::move(order)) {}
  torch::Tensor forward(torch::Tensor x) { return x.permute(order_); }

 private:
  std::vector<int64_t> order_;
};
TORCH_MODULE(Permute);

class CNBlockImpl : public torch::nn::Module, public OnnxExportable {
 public:
  CNBlockImpl(int64_t dim, double stochastic_depth) {
    depthwise_ = torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 7).padding(3).groups(dim));
    norm_ = torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kConvNextNormEps));
    expand_ = torch::nn::Linear(dim, 4 * dim);
    project_ = torch::nn::Linear(4 * dim, dim);
    block_ = register_module("block", torch::nn::Sequential(depthwise_, Permute(std::vector<int64_t>{0, 2, 3, 1}),
                                                            norm_, expand_, torch::nn::GELU(), project_,
                                                            Permute(std::vector<int64_t>{0, 3, 1, 2})));
    layer_scale_ = register_parameter("layer_scale", torch::full({dim, 1, 1}, 1e-6));
    drop_ = register_module("stochastic_depth", StochasticDepth(stochastic_depth));
  }

  // x is (B,dim,H,W) → same shape
  torch::Tensor forward(torch::Tensor x) { return drop_->forward(layer_scale_ * block_->forward(x)) + x; }

  // Channels-first throughout: the Linears become 1x1 convolutions, the
  // LayerNorm one over axis 1, so no transposes reach the graph.
  Value export_onnx(GraphWriter& g, const Value& x) override {
    torch::NoGradGuard no_grad;
    Value y = export_conv(g, *depthwise_, x);
    auto channels_first = [](const torch::Tensor& t) { return t.permute({0, 3, 1, 2}); };
    auto channels_last = [](const torch::Tensor& t) { return t.permute({0, 2, 3, 1}); };
    y = export_layer_norm(g, y, 1, norm_->weight, norm_->bias, kConvNextNormEps,
                          channels_first(norm_->forward(channels_last(y.sample))));
    y = pointwise(g, *expand_, y);
    y = export_gelu(g, y);
    y = pointwise(g, *project_, y);
    y = export_channel_affine(g, "layer_scale", layer_scale_.reshape({-1}), torch::zeros({layer_scale_.size(0)}), y);
    return export_add(g, y, x);
  }

 private:
  static Value pointwise(GraphWriter& g, torch::nn::LinearImpl& linear, const Value& x) {
    const auto weight = linear.weight.detach().reshape({linear.weight.size(0), linear.weight.size(1), 1, 1});
    const auto bias = linear.bias.detach();
    return g.node("Conv", {x.name, g.constant("pointwise.weight", weight), g.constant("pointwise.bias", bias)},
                  {{"kernel_shape", std::vector<int64_t>{1, 1}}}, torch::conv2d(x.sample, weight, bias));
  }

  torch::nn::Conv2d depthwise_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear expand_{nullptr}, project_{nullptr};
  torch::nn::Sequential block_{nullptr};
  torch::Tensor layer_scale_;
  StochasticDepth drop_{nullptr};
};
TORCH_MODULE(CNBlock);

struct ConvNextStage {
  int64_t channels, layers;
};

class ConvNextImpl : public PooledClassifierBackboneImpl {
 public:
  ConvNextImpl(const std::string& arch, const std::vector<ConvNextStage>& stages, const BackboneOptions& o)
      : PooledClassifierBackboneImpl(arch, o.include_top, o.num_classes) {
    const int64_t first = stages.front().channels;
    features_->push_back(Chain(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, first, 4).stride(4)),
                               ChannelLayerNorm(first, kConvNextNormEps)));
    int64_t total_blocks = 0;
    for (const auto& stage : stages) total_blocks += stage.layers;
    int64_t block_index = 0;
    for (size_t s = 0; s < stages.size(); ++s) {
      Chain blocks;
      for (int64_t i = 0; i < stages[s].layers; ++i, ++block_index) {
        const double drop =
            *o.stochastic_depth * static_cast<double>(block_index) / static_cast<double>(total_blocks - 1);
        blocks->push_back(CNBlock(stages[s].channels, drop));
      }
      features_->push_back(blocks);
      if (s + 1 < stages.size()) {
        const int64_t in = stages[s].channels, out = stages[s + 1].channels;
        features_->push_back(Chain(ChannelLayerNorm(in, kConvNextNormEps),
                                   torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 2).stride(2))));
      }
    }
    feature_channels_ = stages.back().channels;
    if (o.include_top) {
      classifier_ = Chain(ChannelLayerNorm(feature_channels_, kConvNextNormEps), torch::nn::Flatten(),
                          torch::nn::Linear(feature_channels_, o.num_classes));
    }
    register_features_and_classifier();
    torch::NoGradGuard no_grad;
    for (const auto& m : modules(/*include_self=*/false)) {
      torch::Tensor weight, bias;
      if (auto* conv = m->as<torch::nn::Conv2d>()) {
        weight = conv->weight, bias = conv->bias;
      } else if (auto* linear = m->as<torch::nn::Linear>()) {
        weight = linear->weight, bias = linear->bias;
      } else {
        continue;
      }
      trunc_normal_(weight, 0.02);
      if (bias.defined()) bias.zero_();
    }
  }

  // The classifier normalises the pooled map before flattening it.
  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return classifier_->forward(torch::adaptive_avg_pool2d(features, {1, 1}));
  }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    Value pooled = export_global_average_pool(g, features);
    auto& norm = *classifier_->ptr(0)->as<ChannelLayerNorm>();
    pooled = norm.export_onnx(g, pooled);
    return export_linear(g, *classifier_->ptr(2)->as<torch::nn::Linear>(), export_flatten(g, pooled));
  }

  // The stem, each CNBlock, each downsampling step; then the classifier's
  // LayerNorm and Linear.
  std::vector<std::string> blocks() const override {
    std::vector<std::string> units = {"features.0"};
    for (size_t i = 1; i < features_->size(); ++i) {
      const std::string prefix = "features." + std::to_string(i);
      const auto stage = features_->children()[i]->children();
      if (!stage.empty() && stage[0]->as<CNBlock>()) {
        for (size_t k = 0; k < stage.size(); ++k) units.push_back(prefix + "." + std::to_string(k));
      } else {
        units.push_back(prefix);
      }
    }
    if (include_top()) units.insert(units.end(), {"classifier.0", "classifier.2"});
    return units;
  }
};

}  // namespace

std::vector<ArchStructure> convnext_structures() {
  return {{"convnext_tiny", [](const BackboneOptions& o) -> Backbone {
             return std::make_shared<ConvNextImpl>("convnext_tiny",
                                                   std::vector<ConvNextStage>{{96, 3}, {192, 3}, {384, 9}, {768, 3}}, o);
           }}};
}

}  // namespace tabby::nn::zoo
