// ResNet-18 and ResNet-50 as torchvision builds them: conv1 7x7/2, bn1, ReLU,
// max pool 3x3/2, layer1..layer4 of residual blocks ("layerK.N.conv1", with
// "downsample.0/1" on the first block of a stage that changes shape), global
// average pool, fc. Stride sits on the 3x3 conv of a bottleneck (ResNet v1.5).
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"
#include "tabby/util/error.h"

namespace tabby::nn::zoo {

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

// 1x1 conv + BN matching the block's output shape, for the identity path.
Chain downsample(int64_t in, int64_t out, int64_t stride) {
  return Chain(conv(in, out, 1, stride), torch::nn::BatchNorm2d(out));
}

// Two 3x3 convs (ResNet-18/34). Expansion 1.
class BasicBlockImpl : public torch::nn::Module, public OnnxExportable {
 public:
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1_(register_module("conv1", conv(in, planes, 3, stride))),
        bn1_(register_module("bn1", torch::nn::BatchNorm2d(planes))),
        conv2_(register_module("conv2", conv(planes, planes, 3, 1))),
        bn2_(register_module("bn2", torch::nn::BatchNorm2d(planes))) {
    if (stride != 1 || in != planes) downsample_ = register_module("downsample", downsample(in, planes, stride));
  }

  // x is (B,in,H,W) → (B,planes,H/stride,W/stride)
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = relu_fresh(conv_bn(*conv1_, *bn1_, x));
    out = conv_bn(*conv2_, *bn2_, out);
    return relu_fresh(add_into_fresh(out, downsample_ ? downsample_->forward(x) : x));
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    Value out = export_relu(g, export_conv_bn(g, *conv1_, *bn1_, x));
    out = export_conv_bn(g, *conv2_, *bn2_, out);
    return export_relu(g, export_add(g, out, downsample_ ? export_module(g, *downsample_, x) : x));
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::BatchNorm2d bn1_;
  torch::nn::Conv2d conv2_;
  torch::nn::BatchNorm2d bn2_;
  Chain downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// 1x1 reduce → 3x3 (stride here) → 1x1 expand x4 (ResNet-50/101/152).
class BottleneckImpl : public torch::nn::Module, public OnnxExportable {
 public:
  static constexpr int64_t kExpansion = 4;

  BottleneckImpl(int64_t in, int64_t planes, int64_t stride)
      : conv1_(register_module("conv1", conv(in, planes, 1, 1))),
        bn1_(register_module("bn1", torch::nn::BatchNorm2d(planes))),
        conv2_(register_module("conv2", conv(planes, planes, 3, stride))),
        bn2_(register_module("bn2", torch::nn::BatchNorm2d(planes))),
        conv3_(register_module("conv3", conv(planes, planes * kExpansion, 1, 1))),
        bn3_(register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion))) {
    if (stride != 1 || in != planes * kExpansion)
      downsample_ = register_module("downsample", downsample(in, planes * kExpansion, stride));
  }

  // x is (B,in,H,W) → (B,4*planes,H/stride,W/stride)
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor out = relu_fresh(conv_bn(*conv1_, *bn1_, x));
    out = relu_fresh(conv_bn(*conv2_, *bn2_, out));
    out = conv_bn(*conv3_, *bn3_, out);
    return relu_fresh(add_into_fresh(out, downsample_ ? downsample_->forward(x) : x));
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    Value out = export_relu(g, export_conv_bn(g, *conv1_, *bn1_, x));
    out = export_relu(g, export_conv_bn(g, *conv2_, *bn2_, out));
    out = export_conv_bn(g, *conv3_, *bn3_, out);
    return export_relu(g, export_add(g, out, downsample_ ? export_module(g, *downsample_, x) : x));
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::BatchNorm2d bn1_;
  torch::nn::Conv2d conv2_;
  torch::nn::BatchNorm2d bn2_;
  torch::nn::Conv2d conv3_;
  torch::nn::BatchNorm2d bn3_;
  Chain downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(int depth, bool include_top, int64_t num_classes)
      : BackboneImpl("resnet" + std::to_string(depth), include_top, num_classes),
        bottleneck_(depth >= 50),
        conv1_(register_module("conv1", conv(3, 64, 7, 2))),
        bn1_(register_module("bn1", torch::nn::BatchNorm2d(64))) {
    const int64_t repeats[4] = {2, 2, 2, 2};
    const int64_t bottleneck_repeats[4] = {3, 4, 6, 3};
    const int64_t expansion = bottleneck_ ? BottleneckImpl::kExpansion : 1;
    int64_t channels = 64;
    for (int stage = 0; stage < 4; ++stage) {
      const int64_t planes = 64 << stage;
      const int64_t n = bottleneck_ ? bottleneck_repeats[stage] : repeats[stage];
      Chain layer;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t stride = (i == 0 && stage > 0) ? 2 : 1;
        if (bottleneck_) layer->push_back(Bottleneck(channels, planes, stride));
        else layer->push_back(BasicBlock(channels, planes, stride));
        channels = planes * expansion;
      }
      layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    feature_channels_ = channels;
    init_torchvision_style(*this, /*linear_std=*/0);  // fc keeps PyTorch's default init, as torchvision
    if (include_top) fc_ = register_module("fc", torch::nn::Linear(feature_channels_, num_classes));
  }

  // x is (B,3,H,W) → (B,512|2048,H/32,W/32)
  torch::Tensor forward_features(torch::Tensor x) override {
    x = relu_fresh(conv_bn(*conv1_, *bn1_, x));
    x = torch::max_pool2d(x, /*kernel_size=*/{3, 3}, /*stride=*/{2, 2}, /*padding=*/{1, 1});
    for (auto& layer : layers_) x = layer->forward(x);
    return x;
  }

  // features (B,C,h,w) → (B,num_classes)
  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return fc_->forward(torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
  }

  Value export_features(GraphWriter& g, const Value& x) override {
    Value y = export_relu(g, export_conv_bn(g, *conv1_, *bn1_, x));
    y = export_max_pool(g, y, {3, 3}, {2, 2}, {1, 1, 1, 1}, false);
    for (auto& layer : layers_) y = export_module(g, *layer, y);
    return y;
  }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_linear(g, *fc_, export_flatten(g, export_global_average_pool(g, features)));
  }

  int64_t feature_channels() const override { return feature_channels_; }

  std::vector<std::string> blocks() const override {
    std::vector<std::string> units = {"conv1", "bn1"};
    for (size_t stage = 0; stage < layers_.size(); ++stage)
      for (size_t i = 0; i < layers_[stage]->size(); ++i)
        units.push_back("layer" + std::to_string(stage + 1) + "." + std::to_string(i));
    if (include_top()) units.push_back("fc");
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"fc"}; }

 private:
  bool bottleneck_;
  torch::nn::Conv2d conv1_;
  torch::nn::BatchNorm2d bn1_;
  std::vector<Chain> layers_;
  torch::nn::Linear fc_{nullptr};
  int64_t feature_channels_ = 0;
};

}  // namespace

std::vector<ArchStructure> resnet_structures() {
  auto of_depth = [](int depth) {
    return [depth](const BackboneOptions& o) -> Backbone {
      return std::make_shared<ResNetImpl>(depth, o.include_top, o.num_classes);
    };
  };
  return {{"resnet18", of_depth(18)}, {"resnet50", of_depth(50)}};
}

}  // namespace tabby::nn::zoo
