// Shared zoo building blocks; see layers.h.
#include "tabby/nn/zoo/layers.h"

#include "tabby/util/torch_compat.h"

namespace tabby::nn::zoo {

torch::Tensor HardswishImpl::forward(torch::Tensor x) { return torch::hardswish(x); }

torch::Tensor HardsigmoidImpl::forward(torch::Tensor x) { return torch::hardsigmoid(x); }

std::optional<torch::nn::AnyModule> make_activation(Activation activation) {
  switch (activation) {
    case Activation::ReLU:
      return torch::nn::AnyModule(torch::nn::ReLU());
    case Activation::ReLU6:
      return torch::nn::AnyModule(torch::nn::ReLU6());
    case Activation::Hardswish:
      return torch::nn::AnyModule(Hardswish());
    case Activation::SiLU:
      return torch::nn::AnyModule(torch::nn::SiLU());
    case Activation::None:
      break;
  }
  return std::nullopt;
}

torch::Tensor conv_bn(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  if (bn.is_training()) return bn.forward(conv.forward(x));
  const auto& bo = bn.options;
  // Batch norm in inference mode: y = (conv(x) - mean) * scale + beta, scale = gamma / sqrt(var + eps).
  torch::Tensor scale = bo.affine() ? bn.weight / torch::sqrt(bn.running_var + bo.eps())
                                    : 1.0 / torch::sqrt(bn.running_var + bo.eps());
  torch::Tensor shift = -bn.running_mean * scale;
  if (bo.affine()) shift = shift + bn.bias;
  if (conv.bias.defined()) shift = shift + conv.bias * scale;
  torch::Tensor weight = conv.weight * scale.view({-1, 1, 1, 1});
  const auto& co = conv.options;
  if (co.padding_mode().index() != 0) {
    // Non-zero padding modes (unused by the zoo): keep the plain path.
    return bn.forward(conv.forward(x));
  }
  namespace F = torch::nn::functional;
  weight = weight.to(x.dtype());
  shift = shift.to(x.dtype());
  // Not under autocast: mkldnn_convolution is not one of the ops it casts.
  if (x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && !torch::GradMode::is_enabled() &&
      !torch_compat::autocast_enabled(c10::DeviceType::CPU) && at::hasMKLDNN()) {
    if (const auto* padding = torch_compat::variant_get_if<torch::ExpandingArray<2>>(co.padding())) {
      return torch::mkldnn_convolution(x, weight, shift, **padding, *co.stride(), *co.dilation(), co.groups());
    }
  }
  return F::conv2d(x, weight,
                   F::Conv2dFuncOptions()
                       .bias(shift)
                       .stride(co.stride())
                       .padding(co.padding())
                       .dilation(co.dilation())
                       .groups(co.groups()));
}

torch::Tensor relu_fresh(torch::Tensor fresh) {
  return torch::GradMode::is_enabled() ? torch::relu(fresh) : fresh.relu_();
}

torch::Tensor add_into_fresh(torch::Tensor fresh, const torch::Tensor& other) {
  return torch::GradMode::is_enabled() ? fresh + other : fresh.add_(other);
}

namespace {

// ReLU or ReLU6 applied to `x` in place; false (x untouched) for any other module.
bool activate_in_place(torch::nn::Module& module, torch::Tensor& x) {
  if (module.as<torch::nn::ReLU6>()) {
    x.clamp_(0, 6);
    return true;
  }
  if (module.as<torch::nn::ReLU>()) {
    x.relu_();
    return true;
  }
  return false;
}

}  // namespace

torch::Tensor ChainImpl::forward(torch::Tensor x) {
  const bool in_place = !torch::GradMode::is_enabled();
  for (auto it = begin(); it != end(); ++it) {
    auto next = it + 1;
    if (next != end()) {
      auto* conv = it->ptr()->as<torch::nn::Conv2d>();
      auto* bn = conv ? next->ptr()->as<torch::nn::BatchNorm2d>() : nullptr;
      if (conv && bn) {
        x = conv_bn(*conv, *bn, x);
        it = next;
        auto activation = it + 1;
        if (in_place && activation != end() && activate_in_place(*activation->ptr(), x)) it = activation;
        continue;
      }
    }
    x = it->forward(x);
  }
  return x;
}

Chain conv_norm_activation(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                           int64_t stride, int64_t groups, Activation activation,
                                           const NormSettings& norm) {
  Chain seq;
  seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, out_channels, kernel_size)
                                       .stride(stride)
                                       .padding((kernel_size - 1) / 2)
                                       .groups(groups)
                                       .bias(false)));
  seq->push_back(torch::nn::BatchNorm2d(
      torch::nn::BatchNorm2dOptions(out_channels).eps(norm.eps).momentum(norm.momentum)));
  if (auto act = make_activation(activation)) seq->push_back(std::move(*act));
  return seq;
}

namespace {

torch::Tensor activate(Activation activation, const torch::Tensor& x) {
  switch (activation) {
    case Activation::ReLU:
      return torch::relu(x);
    case Activation::ReLU6:
      return torch::clamp(x, 0, 6);
    case Activation::Hardswish:
      return torch::hardswish(x);
    case Activation::SiLU:
      return torch::silu(x);
    case Activation::None:
      break;
  }
  return x;
}

Value export_activation(GraphWriter& g, Activation activation, const Value& x) {
  switch (activation) {
    case Activation::ReLU:
      return export_relu(g, x);
    case Activation::ReLU6:
      return export_relu6(g, x);
    case Activation::Hardswish:
      return export_hardswish(g, x);
    case Activation::SiLU:
      return export_silu(g, x);
    case Activation::None:
      break;
  }
  return x;
}

}  // namespace

SqueezeExcitationImpl::SqueezeExcitationImpl(int64_t channels, int64_t squeezed, Activation squeeze_activation,
                                             Gate gate)
    : fc1(register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, squeezed, 1)))),
      fc2(register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeezed, channels, 1)))),
      squeeze_activation_(squeeze_activation),
      gate_(gate) {}

torch::Tensor SqueezeExcitationImpl::forward(torch::Tensor x) {
  torch::Tensor scale = torch::adaptive_avg_pool2d(x, {1, 1});  // (B,C,1,1)
  scale = fc2->forward(activate(squeeze_activation_, fc1->forward(scale)));
  scale = gate_ == Gate::Sigmoid ? torch::sigmoid(scale) : torch::hardsigmoid(scale);
  return scale * x;
}

Value SqueezeExcitationImpl::export_onnx(GraphWriter& g, const Value& x) {
  Value scale = export_global_average_pool(g, x);
  scale = export_conv(g, *fc2, export_activation(g, squeeze_activation_, export_conv(g, *fc1, scale)));
  scale = gate_ == Gate::Sigmoid ? export_sigmoid(g, scale) : export_hardsigmoid(g, scale);
  return export_scale_channels(g, x, scale);
}

torch::Tensor StochasticDepthImpl::forward(torch::Tensor x) {
  if (!is_training() || p_ == 0.0) return x;
  const double survival = 1.0 - p_;
  std::vector<int64_t> per_sample(x.dim(), 1);
  per_sample[0] = x.size(0);
  torch::Tensor keep = torch::empty(per_sample, x.options()).bernoulli_(survival);
  if (survival > 0.0) keep.div_(survival);
  return x * keep;
}

ChannelLayerNormImpl::ChannelLayerNormImpl(int64_t channels, double eps)
    : weight(register_parameter("weight", torch::ones({channels}))),
      bias(register_parameter("bias", torch::zeros({channels}))),
      eps_(eps) {}

torch::Tensor ChannelLayerNormImpl::forward(torch::Tensor x) {
  torch::Tensor pixels_last = x.permute({0, 2, 3, 1});
  pixels_last = torch::layer_norm(pixels_last, {weight.size(0)}, weight, bias, eps_);
  return pixels_last.permute({0, 3, 1, 2});
}

Value ChannelLayerNormImpl::export_onnx(GraphWriter& g, const Value& x) {
  return export_layer_norm(g, x, /*axis=*/1, weight, bias, eps_, forward(x.sample));
}

void trunc_normal_(torch::Tensor t, double std) {
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std).clamp_(-2.0, 2.0);
}

torch::Tensor PooledClassifierBackboneImpl::forward_features(torch::Tensor x) { return features_->forward(x); }

torch::Tensor PooledClassifierBackboneImpl::forward_top(torch::Tensor features) {
  require_top();
  return classifier_->forward(torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
}

Value PooledClassifierBackboneImpl::export_features(GraphWriter& g, const Value& x) {
  return export_module(g, *features_, x);
}

Value PooledClassifierBackboneImpl::export_top(GraphWriter& g, const Value& features) {
  require_top();
  return export_module(g, *classifier_, export_flatten(g, export_global_average_pool(g, features)));
}

void PooledClassifierBackboneImpl::register_features_and_classifier() {
  register_module("features", features_);
  if (include_top()) register_module("classifier", classifier_);
}

int64_t make_divisible(double value, int64_t divisor) {
  int64_t rounded = std::max<int64_t>(divisor, static_cast<int64_t>(value + divisor / 2.0) / divisor * divisor);
  if (static_cast<double>(rounded) < 0.9 * value) rounded += divisor;
  return rounded;
}

void init_torchvision_style(torch::nn::Module& module, double linear_std) {
  torch::NoGradGuard no_grad;
  for (const auto& m : module.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
      if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
    } else if (auto* bn = m->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    } else if (auto* linear = m->as<torch::nn::Linear>()) {
      if (linear_std > 0) {
        torch::nn::init::normal_(linear->weight, 0.0, linear_std);
        torch::nn::init::zeros_(linear->bias);
      }
    }
  }
}

}  // namespace tabby::nn::zoo
