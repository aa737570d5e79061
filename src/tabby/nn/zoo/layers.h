// Small building blocks shared by the zoo architectures: the activations the
// LibTorch C++ frontend lacks as modules, torchvision's Conv2dNormActivation as
// a Chain (so its children are named 0, 1, 2 like torchvision's), and the
// weight initialisations torchvision applies.
#pragma once

#include "tabby/nn/graph_writer.h"
#include "tabby/nn/zoo/backbone.h"

#include <torch/torch.h>

#include <functional>
#include <optional>

namespace tabby::nn::zoo {

// x * relu6(x + 3) / 6, as torch.nn.Hardswish. No parameters.
class HardswishImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(Hardswish);

// relu6(x + 3) / 6, as torch.nn.Hardsigmoid. No parameters.
class HardsigmoidImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(Hardsigmoid);

// conv then batch norm. When the batch norm is in inference mode its affine
// map is folded into the convolution's weights and bias (exact, and
// differentiable in the conv's weights), which skips a full pass over the
// activations: batch norm dominated inference time on CPU. Without autograd
// on the CPU in fp32 the convolution is oneDNN's whatever the batch size and thread
// count: LibTorch's own choice sends small single-threaded batches of 1x1
// convolutions to a slower matrix-multiply path.
torch::Tensor conv_bn(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

// For a tensor nothing else holds (the output of conv_bn): ReLU, and the sum
// with `other`, written into it when no autograd graph is recorded
// (inference), which saves an allocation and a pass over memory per layer;
// with autograd on, the out-of-place ops of training. Same values either way.
torch::Tensor relu_fresh(torch::Tensor fresh);
torch::Tensor add_into_fresh(torch::Tensor fresh, const torch::Tensor& other);

// A Sequential that can itself sit inside a Sequential (LibTorch's AnyModule
// needs a non-template forward, which Sequential lacks). Consecutive
// Conv2d + BatchNorm2d children run as conv_bn, and a ReLU or ReLU6 after them
// in place at inference.
class ChainImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x);
};
TORCH_MODULE(Chain);

enum class Activation { None, ReLU, ReLU6, Hardswish, SiLU };

// Batch norm settings; torchvision uses eps 1e-5 / momentum 0.1 except for
// MobileNetV3 (eps 1e-3, momentum 0.01).
struct NormSettings {
  double eps = 1e-5;
  double momentum = 0.1;
};

// A parameter-free activation module, or nullopt for Activation::None.
std::optional<torch::nn::AnyModule> make_activation(Activation activation);

// torchvision.ops.Conv2dNormActivation: Conv2d (no bias, "same" padding for odd
// kernels) → BatchNorm2d → activation, as a Chain with children 0, 1, 2.
Chain conv_norm_activation(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                           int64_t stride, int64_t groups, Activation activation,
                                           const NormSettings& norm);

// torchvision.ops.SqueezeExcitation: global average → 1x1 conv "fc1" →
// `squeeze_activation` → 1x1 conv "fc2" → gate, which scales the input per
// channel. MobileNetV3 gates with hardsigmoid, EfficientNet and RegNet with a
// sigmoid.
enum class Gate { Sigmoid, Hardsigmoid };
class SqueezeExcitationImpl : public torch::nn::Module, public OnnxExportable {
 public:
  SqueezeExcitationImpl(int64_t channels, int64_t squeezed, Activation squeeze_activation, Gate gate);
  // x is (B,C,H,W) → (B,C,H,W)
  torch::Tensor forward(torch::Tensor x);
  Value export_onnx(GraphWriter& g, const Value& x) override;

  torch::nn::Conv2d fc1{nullptr}, fc2{nullptr};

 private:
  Activation squeeze_activation_;
  Gate gate_;
};
TORCH_MODULE(SqueezeExcitation);

// torchvision.ops.StochasticDepth in "row" mode: in training, each sample's
// residual branch is dropped with probability p and the kept ones are scaled
// by 1/(1-p), so the expectation is unchanged; the identity in inference.
// No parameters.
class StochasticDepthImpl : public torch::nn::Module {
 public:
  explicit StochasticDepthImpl(double p) : p_(p) {}
  torch::Tensor forward(torch::Tensor x);
  double p() const { return p_; }

 private:
  double p_;
};
TORCH_MODULE(StochasticDepth);

// torchvision.models.convnext.LayerNorm2d: layer norm over the channels of
// each pixel of a (B,C,H,W) map; parameters "weight" and "bias" (C).
class ChannelLayerNormImpl : public torch::nn::Module, public OnnxExportable {
 public:
  ChannelLayerNormImpl(int64_t channels, double eps);
  torch::Tensor forward(torch::Tensor x);
  Value export_onnx(GraphWriter& g, const Value& x) override;

  torch::Tensor weight, bias;

 private:
  double eps_;
};
TORCH_MODULE(ChannelLayerNorm);

// nn.init.trunc_normal_(t, std=std) as torchvision calls it: normal(0, std)
// cut at ±2 (absolute, not in units of std).
void trunc_normal_(torch::Tensor t, double std);

// torchvision's most common layout, as a base for such archs: a `features`
// Chain, then global average pooling, flattening and a `classifier` Chain.
// Subclasses fill features_ (and classifier_ when include_top) and
// feature_channels_, and list their units.
class PooledClassifierBackboneImpl : public BackboneImpl {
 public:
  using BackboneImpl::BackboneImpl;

  // x is (B,3,H,W) → (B,feature_channels,h,w)
  torch::Tensor forward_features(torch::Tensor x) override;
  // features (B,C,h,w) → (B,num_classes)
  torch::Tensor forward_top(torch::Tensor features) override;
  Value export_features(GraphWriter& g, const Value& x) override;
  Value export_top(GraphWriter& g, const Value& features) override;
  int64_t feature_channels() const override { return feature_channels_; }
  std::vector<std::string> top_prefixes() const override { return {"classifier"}; }

 protected:
  // Registers features_ (and classifier_ when include_top) under torchvision's names.
  void register_features_and_classifier();

  Chain features_;
  Chain classifier_{nullptr};
  int64_t feature_channels_ = 0;
};

// torchvision's _make_divisible: rounds channel counts to a multiple of
// `divisor` without going more than 10% below `value`.
int64_t make_divisible(double value, int64_t divisor = 8);

// Initialisations used by torchvision's model constructors, applied to every
// Conv2d / BatchNorm2d / Linear found under `module`:
//   conv: kaiming normal (fan_out, relu gain), bias 0; batch norm: weight 1,
//   bias 0; linear: normal(0, linear_std), bias 0 — or LibTorch's default
//   (same as PyTorch's) when linear_std <= 0.
void init_torchvision_style(torch::nn::Module& module, double linear_std);

}  // namespace tabby::nn::zoo
