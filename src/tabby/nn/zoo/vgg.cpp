// VGG-16 (configuration "D", no batch norm) as torchvision builds it:
// features.0..30 = 13 3x3 convs (with bias) each followed by ReLU, and five
// 2x2 max pools; the top = adaptive average pool to 7x7 → flatten →
// classifier.0 Linear(25088, 4096) → ReLU → Dropout(0.5) → classifier.3
// Linear(4096, 4096) → ReLU → Dropout → classifier.6 Linear(4096, C).
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

namespace tabby::nn::zoo {

namespace {

class Vgg16Impl : public BackboneImpl {
 public:
  static constexpr int64_t kChannels = 512;
  static constexpr int64_t kPool = 7;

  Vgg16Impl(bool include_top, int64_t num_classes) : BackboneImpl("vgg16", include_top, num_classes) {
    const int64_t pool = 0;  // a max pool in the configuration list
    const int64_t config[] = {64,  64,  pool, 128, 128, pool, 256, 256, 256, pool,
                              512, 512, 512,  pool, 512, 512, 512, pool};
    int64_t channels = 3;
    for (int64_t width : config) {
      if (width == pool) {
        features_->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
        continue;
      }
      conv_units_.push_back("features." + std::to_string(features_->size()));
      features_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, width, 3).padding(1)));
      features_->push_back(torch::nn::ReLU());
      channels = width;
    }
    register_module("features", features_);
    if (include_top) {
      classifier_ = Chain(
          torch::nn::Linear(kChannels * kPool * kPool, 4096), torch::nn::ReLU(), torch::nn::Dropout(0.5),
          torch::nn::Linear(4096, 4096), torch::nn::ReLU(), torch::nn::Dropout(0.5),
          torch::nn::Linear(4096, num_classes));
      register_module("classifier", classifier_);
    }
    init_torchvision_style(*this, /*linear_std=*/0.01);
  }

  // x is (B,3,H,W) → (B,512,H/32,W/32)
  torch::Tensor forward_features(torch::Tensor x) override { return features_->forward(x); }

  // features (B,512,h,w) → (B,num_classes)
  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return classifier_->forward(torch::adaptive_avg_pool2d(features, {kPool, kPool}).flatten(1));
  }

  Value export_features(GraphWriter& g, const Value& x) override { return export_module(g, *features_, x); }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_module(g, *classifier_, export_flatten(g, export_adaptive_average_pool(g, features, kPool)));
  }

  int64_t feature_channels() const override { return kChannels; }

  std::vector<std::string> blocks() const override {
    std::vector<std::string> units = conv_units_;
    if (include_top()) units.insert(units.end(), {"classifier.0", "classifier.3", "classifier.6"});
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"classifier"}; }

 private:
  Chain features_;
  Chain classifier_{nullptr};
  std::vector<std::string> conv_units_;
};

}  // namespace

std::vector<ArchStructure> vgg_structures() {
  return {{"vgg16", [](const BackboneOptions& o) -> Backbone {
             return std::make_shared<Vgg16Impl>(o.include_top, o.num_classes);
           }}};
}

}  // namespace tabby::nn::zoo
