// Small building blocks shared by the zoo architectures: the activations the
// LibTorch C++ frontend lacks as modules, torchvision's Conv2dNormActivation as
// a Chain (so its children are named 0, 1, 2 like torchvision's), and the
// weight initialisations torchvision applies.
#pragma once

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

enum class Activation { None, ReLU, ReLU6, Hardswish };

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
