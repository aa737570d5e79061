#include "tabby/nn/graph_writer.h"

#include "tabby/nn/zoo/layers.h"
#include "tabby/util/torch_compat.h"
#include "tabby/util/error.h"

namespace tabby::nn {

namespace {

std::vector<int64_t> vec(const torch::ExpandingArray<2>& a) { return {(*a)[0], (*a)[1]}; }

using ConvOptions = torch::nn::detail::ConvNdOptions<2>;

std::vector<int64_t> conv_pads(const ConvOptions& o) {
  const auto* p = torch_compat::variant_get_if<torch::ExpandingArray<2>>(o.padding());
  if (!p) throw Error("cannot export a convolution with string padding");
  return {(**p)[0], (**p)[1], (**p)[0], (**p)[1]};
}

Value conv_node(GraphWriter& g, const ConvOptions& o, const Value& x, const torch::Tensor& weight,
                const torch::Tensor& bias, const torch::Tensor& result, const std::string& hint) {
  std::vector<std::string> inputs = {x.name, g.constant(hint + ".weight", weight)};
  if (bias.defined()) inputs.push_back(g.constant(hint + ".bias", bias));
  return g.node("Conv", inputs,
                {{"kernel_shape", std::vector<int64_t>{weight.size(2), weight.size(3)}},
                 {"strides", vec(o.stride())},
                 {"pads", conv_pads(o)},
                 {"dilations", vec(o.dilation())},
                 {"group", o.groups()}},
                result);
}

// Keeps the name: an op ONNX does not need (dropout at inference).
Value identity(const Value& x) { return x; }

Value export_batch_norm(GraphWriter& g, torch::nn::BatchNorm2dImpl& bn, const Value& x) {
  const auto& o = bn.options;
  const int64_t c = o.num_features();
  const auto scale = o.affine() ? bn.weight.detach() : torch::ones({c});
  const auto bias = o.affine() ? bn.bias.detach() : torch::zeros({c});
  return g.node("BatchNormalization",
                {x.name, g.constant("bn.scale", scale), g.constant("bn.bias", bias),
                 g.constant("bn.mean", bn.running_mean.detach()), g.constant("bn.var", bn.running_var.detach())},
                {{"epsilon", static_cast<float>(o.eps())}}, bn.forward(x.sample));
}

Value export_sequence(GraphWriter& g, torch::nn::SequentialImpl& seq, const Value& x) {
  Value y = x;
  for (auto it = seq.begin(); it != seq.end(); ++it) {
    auto next = it + 1;
    auto* conv = it->ptr()->as<torch::nn::Conv2d>();
    auto* bn = conv && next != seq.end() ? next->ptr()->as<torch::nn::BatchNorm2d>() : nullptr;
    if (conv && bn) {
      y = export_conv_bn(g, *conv, *bn, y);
      it = next;
    } else {
      y = export_module(g, *it->ptr(), y);
    }
  }
  return y;
}

}  // namespace

Value export_conv(GraphWriter& g, torch::nn::Conv2dImpl& conv, const Value& x) {
  return conv_node(g, conv.options, x, conv.weight.detach(), conv.bias.defined() ? conv.bias.detach() : torch::Tensor(),
                   conv.forward(x.sample), "conv");
}

Value export_conv_bn(GraphWriter& g, torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const Value& x) {
  torch::NoGradGuard no_grad;
  const auto& bo = bn.options;
  // The same arithmetic as zoo::conv_bn, so the exported weights are the ones forward() uses.
  torch::Tensor scale = bo.affine() ? bn.weight / torch::sqrt(bn.running_var + bo.eps())
                                    : 1.0 / torch::sqrt(bn.running_var + bo.eps());
  torch::Tensor shift = -bn.running_mean * scale;
  if (bo.affine()) shift = shift + bn.bias;
  if (conv.bias.defined()) shift = shift + conv.bias * scale;
  const torch::Tensor weight = conv.weight * scale.view({-1, 1, 1, 1});
  return conv_node(g, conv.options, x, weight.contiguous(), shift.contiguous(), zoo::conv_bn(conv, bn, x.sample),
                   "conv_bn");
}

Value export_relu(GraphWriter& g, const Value& x) { return g.node("Relu", {x.name}, {}, torch::relu(x.sample)); }

Value export_relu6(GraphWriter& g, const Value& x) {
  const auto y = torch::clamp(x.sample, 0.0, 6.0);
  if (g.opset() < 11) return g.node("Clip", {x.name}, {{"min", 0.0f}, {"max", 6.0f}}, y);
  return g.node("Clip", {x.name, g.constant("clip.min", torch::tensor(0.0f)), g.constant("clip.max", torch::tensor(6.0f))},
                {}, y);
}

Value export_hardsigmoid(GraphWriter& g, const Value& x) {
  // torch's hardsigmoid is relu6(x + 3) / 6 = clip(x / 6 + 1/2, 0, 1).
  return g.node("HardSigmoid", {x.name}, {{"alpha", 1.0f / 6.0f}, {"beta", 0.5f}}, torch::hardsigmoid(x.sample));
}

Value export_hardswish(GraphWriter& g, const Value& x) {
  const auto y = torch::hardswish(x.sample);
  if (g.opset() >= 14) return g.node("HardSwish", {x.name}, {}, y);
  // Before opset 14: x * hardsigmoid(x), which OpenCV and older runtimes read.
  return g.node("Mul", {x.name, export_hardsigmoid(g, x).name}, {}, y);
}

Value export_sigmoid(GraphWriter& g, const Value& x) {
  return g.node("Sigmoid", {x.name}, {}, torch::sigmoid(x.sample));
}

Value export_silu(GraphWriter& g, const Value& x) {
  return g.node("Mul", {x.name, export_sigmoid(g, x).name}, {}, torch::silu(x.sample));
}

Value export_gelu(GraphWriter& g, const Value& x) {
  const Value scaled = g.node("Div", {x.name, g.constant("gelu.sqrt2", torch::tensor(std::sqrt(2.0f)))}, {},
                              x.sample / std::sqrt(2.0f));
  const Value erf = g.node("Erf", {scaled.name}, {}, torch::erf(scaled.sample));
  const Value one_plus = g.node("Add", {erf.name, g.constant("gelu.one", torch::tensor(1.0f))}, {}, erf.sample + 1);
  const Value half_x = g.node("Mul", {x.name, g.constant("gelu.half", torch::tensor(0.5f))}, {}, x.sample * 0.5);
  return g.node("Mul", {half_x.name, one_plus.name}, {}, torch::gelu(x.sample));
}

Value export_mul(GraphWriter& g, const Value& a, const Value& b) {
  return g.node("Mul", {a.name, b.name}, {}, a.sample * b.sample);
}

Value export_layer_norm(GraphWriter& g, const Value& x, int64_t axis, const torch::Tensor& weight,
                        const torch::Tensor& bias, double eps, const torch::Tensor& result) {
  const int64_t rank = x.sample.dim();
  if (axis < 0) axis += rank;
  // weight and bias broadcast along `axis`: shape (C, 1, ..., 1) with as many 1s as axes after it.
  std::vector<int64_t> along(rank - axis, 1);
  along[0] = weight.size(0);
  const torch::Tensor w = weight.detach().to(torch::kFloat32).reshape(along);
  const torch::Tensor b = bias.detach().to(torch::kFloat32).reshape(along);
  if (g.opset() >= 17 && axis == rank - 1) {
    return g.node("LayerNormalization",
                  {x.name, g.constant("ln.weight", weight.detach().to(torch::kFloat32)),
                   g.constant("ln.bias", bias.detach().to(torch::kFloat32))},
                  {{"axis", axis}, {"epsilon", static_cast<float>(eps)}}, result);
  }
  const std::vector<int64_t> axes = {axis};
  const torch::Tensor mean_s = x.sample.mean(axes, /*keepdim=*/true);
  const Value mean = g.node("ReduceMean", {x.name}, {{"axes", axes}, {"keepdims", int64_t{1}}}, mean_s);
  const Value centred = g.node("Sub", {x.name, mean.name}, {}, x.sample - mean_s);
  const Value squared = export_mul(g, centred, centred);
  const torch::Tensor var_s = squared.sample.mean(axes, true);
  const Value var = g.node("ReduceMean", {squared.name}, {{"axes", axes}, {"keepdims", int64_t{1}}}, var_s);
  const Value var_eps = g.node("Add", {var.name, g.constant("ln.eps", torch::tensor(static_cast<float>(eps)))}, {},
                               var_s + eps);
  const Value deviation = g.node("Sqrt", {var_eps.name}, {}, torch::sqrt(var_eps.sample));
  const Value normed = g.node("Div", {centred.name, deviation.name}, {}, centred.sample / deviation.sample);
  const Value scaled = g.node("Mul", {normed.name, g.constant("ln.weight", w)}, {}, normed.sample * w);
  return g.node("Add", {scaled.name, g.constant("ln.bias", b)}, {}, result);
}

Value export_linear_last_axis(GraphWriter& g, torch::nn::LinearImpl& linear, const Value& x) {
  const torch::Tensor weight_t = linear.weight.detach().t().contiguous();
  const torch::Tensor product = torch::matmul(x.sample, weight_t);
  const Value y = g.node("MatMul", {x.name, g.constant("linear.weight_t", weight_t)}, {}, product);
  if (!linear.bias.defined()) return y;
  return g.node("Add", {y.name, g.constant("linear.bias", linear.bias.detach())}, {}, linear.forward(x.sample));
}

Value export_add(GraphWriter& g, const Value& a, const Value& b) {
  return g.node("Add", {a.name, b.name}, {}, a.sample + b.sample);
}

Value export_channel_affine(GraphWriter& g, const std::string& hint, const torch::Tensor& mul, const torch::Tensor& add,
                            const Value& x) {
  const int64_t channels = x.sample.size(1);
  const auto weight = mul.detach().to(torch::kFloat32).reshape({channels, 1, 1, 1});
  const auto bias = add.detach().to(torch::kFloat32).reshape({channels});
  const std::vector<int64_t> ones = {1, 1}, zeros = {0, 0};
  const auto y = torch::conv2d(x.sample, weight, bias, torch::IntArrayRef(ones), torch::IntArrayRef(zeros),
                               torch::IntArrayRef(ones), channels);
  return g.node("Conv", {x.name, g.constant(hint + ".weight", weight), g.constant(hint + ".bias", bias)},
                {{"kernel_shape", std::vector<int64_t>{1, 1}}, {"group", channels}}, y);
}

Value export_scale_channels(GraphWriter& g, const Value& x, const Value& scale) {
  const int64_t h = x.sample.size(2), w = x.sample.size(3);
  const auto spread_sample = scale.sample.expand_as(x.sample);
  const std::string factors =
      g.constant("se.spread", torch::tensor({1.0f, 1.0f, static_cast<float>(h), static_cast<float>(w)}));
  std::vector<std::string> inputs;
  if (g.opset() < 11) {
    inputs = {scale.name, factors};
  } else {
    // roi is unused by nearest resizing; opset 11 and 12 still want the input.
    const std::string roi = g.opset() < 13 ? g.constant("se.roi", torch::empty({0}, torch::kFloat32)) : "";
    inputs = {scale.name, roi, factors};
  }
  const Value spread = g.node("Resize", inputs, {{"mode", std::string("nearest")}}, spread_sample);
  return g.node("Mul", {x.name, spread.name}, {}, x.sample * spread_sample);
}

Value export_global_average_pool(GraphWriter& g, const Value& x) {
  return g.node("GlobalAveragePool", {x.name}, {}, torch::adaptive_avg_pool2d(x.sample, {1, 1}));
}

Value export_flatten(GraphWriter& g, const Value& x) {
  return g.node("Flatten", {x.name}, {{"axis", int64_t{1}}}, x.sample.flatten(1));
}

Value export_linear(GraphWriter& g, torch::nn::LinearImpl& linear, const Value& x) {
  std::vector<std::string> inputs = {x.name, g.constant("linear.weight", linear.weight.detach())};
  if (linear.bias.defined()) inputs.push_back(g.constant("linear.bias", linear.bias.detach()));
  return g.node("Gemm", inputs, {{"transB", int64_t{1}}}, linear.forward(x.sample));
}

Value export_max_pool(GraphWriter& g, const Value& x, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                      std::vector<int64_t> pads, bool ceil_mode) {
  if (ceil_mode && g.opset() < 10) throw UsageError("this model's pooling needs --opset 10 or later (ceil_mode)");
  const auto y = torch::max_pool2d(x.sample, kernel, stride, {pads[0], pads[1]}, {1, 1}, ceil_mode);
  std::vector<Attr> attrs = {{"kernel_shape", kernel}, {"strides", stride}, {"pads", pads}};
  if (ceil_mode) attrs.push_back({"ceil_mode", int64_t{1}});
  return g.node("MaxPool", {x.name}, attrs, y);
}

Value export_adaptive_average_pool(GraphWriter& g, const Value& x, int64_t size) {
  if (size == 1) return export_global_average_pool(g, x);
  const int64_t h = x.sample.size(2), w = x.sample.size(3);
  if (h == size && w == size) return x;
  if (h % size != 0 || w % size != 0) {
    throw UsageError("this model's adaptive pooling from " + std::to_string(h) + "x" + std::to_string(w) + " to " +
                         std::to_string(size) + "x" + std::to_string(size) + " has no exact ONNX form",
                     "export a run trained at an image size whose feature map is a multiple of that (e.g. 224)");
  }
  const std::vector<int64_t> kernel = {h / size, w / size};
  return g.node("AveragePool", {x.name}, {{"kernel_shape", kernel}, {"strides", kernel}},
                torch::adaptive_avg_pool2d(x.sample, {size, size}));
}

Value export_module(GraphWriter& g, torch::nn::Module& m, const Value& x) {
  if (auto* e = dynamic_cast<OnnxExportable*>(&m)) return e->export_onnx(g, x);
  if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(&m)) return export_sequence(g, *seq, x);
  if (auto* conv = m.as<torch::nn::Conv2d>()) return export_conv(g, *conv, x);
  if (auto* bn = m.as<torch::nn::BatchNorm2d>()) return export_batch_norm(g, *bn, x);
  if (m.as<torch::nn::ReLU>()) return export_relu(g, x);
  if (m.as<torch::nn::ReLU6>()) return export_relu6(g, x);
  if (m.as<zoo::Hardswish>()) return export_hardswish(g, x);
  if (m.as<zoo::Hardsigmoid>()) return export_hardsigmoid(g, x);
  if (m.as<torch::nn::SiLU>()) return export_silu(g, x);
  if (m.as<torch::nn::GELU>()) return export_gelu(g, x);
  if (m.as<torch::nn::Dropout>() || m.as<zoo::StochasticDepth>()) return identity(x);
  if (auto* ln = m.as<torch::nn::LayerNorm>()) {
    return export_layer_norm(g, x, -1, ln->weight, ln->bias, ln->options.eps(), ln->forward(x.sample));
  }
  if (auto* linear = m.as<torch::nn::Linear>()) return export_linear(g, *linear, x);
  if (auto* pool = m.as<torch::nn::MaxPool2d>()) {
    const auto& o = pool->options;
    const auto pad = vec(o.padding());
    return export_max_pool(g, x, vec(o.kernel_size()), vec(o.stride()), {pad[0], pad[1], pad[0], pad[1]}, o.ceil_mode());
  }
  throw Error("cannot export a module of type " + m.name() + " to ONNX");
}

}  // namespace tabby::nn
