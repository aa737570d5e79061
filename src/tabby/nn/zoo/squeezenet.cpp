// SqueezeNet 1.1 as torchvision builds it: features.0 conv 3x3/2 (64), ReLU,
// max pools 3x3/2 with ceil mode at 2, 5 and 8, Fire modules at 3,4,6,7,9..12
// ("features.N.squeeze/expand1x1/expand3x3"); the top = Dropout(0.5) →
// classifier.1 1x1 conv to C classes → ReLU → global average pool → flatten.
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

namespace tabby::nn::zoo {

namespace {

// Squeeze to few channels with a 1x1 conv, then expand with parallel 1x1 and
// 3x3 convs whose outputs are concatenated.
class FireImpl : public torch::nn::Module, public OnnxExportable {
 public:
  FireImpl(int64_t in, int64_t squeeze, int64_t expand1x1, int64_t expand3x3)
      : squeeze_(register_module("squeeze", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, squeeze, 1)))),
        expand1x1_(
            register_module("expand1x1", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeeze, expand1x1, 1)))),
        expand3x3_(register_module(
            "expand3x3", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeeze, expand3x3, 3).padding(1)))) {}

  // x is (B,in,H,W) → (B,expand1x1+expand3x3,H,W)
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(squeeze_->forward(x));
    return torch::cat({torch::relu(expand1x1_->forward(x)), torch::relu(expand3x3_->forward(x))}, 1);
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value s = export_relu(g, export_conv(g, *squeeze_, x));
    const Value a = export_relu(g, export_conv(g, *expand1x1_, s));
    const Value b = export_relu(g, export_conv(g, *expand3x3_, s));
    return g.node("Concat", {a.name, b.name}, {{"axis", int64_t{1}}}, torch::cat({a.sample, b.sample}, 1));
  }

 private:
  torch::nn::Conv2d squeeze_, expand1x1_, expand3x3_;
};
TORCH_MODULE(Fire);

torch::nn::MaxPool2d ceil_pool() {
  return torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).ceil_mode(true));
}

class SqueezeNet11Impl : public BackboneImpl {
 public:
  static constexpr int64_t kChannels = 512;

  SqueezeNet11Impl(bool include_top, int64_t num_classes) : BackboneImpl("squeezenet1_1", include_top, num_classes) {
    features_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 64, 3).stride(2)));
    features_->push_back(torch::nn::ReLU());
    features_->push_back(ceil_pool());
    features_->push_back(Fire(64, 16, 64, 64));
    features_->push_back(Fire(128, 16, 64, 64));
    features_->push_back(ceil_pool());
    features_->push_back(Fire(128, 32, 128, 128));
    features_->push_back(Fire(256, 32, 128, 128));
    features_->push_back(ceil_pool());
    features_->push_back(Fire(256, 48, 192, 192));
    features_->push_back(Fire(384, 48, 192, 192));
    features_->push_back(Fire(384, 64, 256, 256));
    features_->push_back(Fire(512, 64, 256, 256));
    register_module("features", features_);
    torch::nn::Conv2d final_conv{nullptr};
    if (include_top) {
      final_conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(kChannels, num_classes, 1));
      classifier_ = Chain(torch::nn::Dropout(0.5), final_conv, torch::nn::ReLU());
      register_module("classifier", classifier_);
    }
    // torchvision: kaiming uniform (fan_in, leaky-relu gain with a=0) for every
    // conv but the final one, which is normal(0, 0.01); biases 0.
    torch::NoGradGuard no_grad;
    for (const auto& m : modules(/*include_self=*/false)) {
      auto* c = m->as<torch::nn::Conv2d>();
      if (!c) continue;
      if (final_conv && c == final_conv.get()) torch::nn::init::normal_(c->weight, 0.0, 0.01);
      else torch::nn::init::kaiming_uniform_(c->weight);
      torch::nn::init::zeros_(c->bias);
    }
  }

  // x is (B,3,H,W) → (B,512,h,w), h ≈ H/16
  torch::Tensor forward_features(torch::Tensor x) override { return features_->forward(x); }

  // features (B,512,h,w) → (B,num_classes): per-location class scores, averaged.
  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return torch::adaptive_avg_pool2d(classifier_->forward(features), {1, 1}).flatten(1);
  }

  Value export_features(GraphWriter& g, const Value& x) override { return export_module(g, *features_, x); }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_flatten(g, export_global_average_pool(g, export_module(g, *classifier_, features)));
  }

  int64_t feature_channels() const override { return kChannels; }

  std::vector<std::string> blocks() const override {
    std::vector<std::string> units;
    for (int index : {0, 3, 4, 6, 7, 9, 10, 11, 12}) units.push_back("features." + std::to_string(index));
    if (include_top()) units.push_back("classifier.1");
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"classifier"}; }

 private:
  Chain features_;
  Chain classifier_{nullptr};
};

}  // namespace

std::vector<ArchStructure> squeezenet_structures() {
  return {{"squeezenet1_1", [](const BackboneOptions& o) -> Backbone {
             return std::make_shared<SqueezeNet11Impl>(o.include_top, o.num_classes);
           }}};
}

}  // namespace tabby::nn::zoo
