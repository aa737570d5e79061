// Writing a network as an ONNX graph, without the engine knowing protobuf:
// layers and zoo blocks describe themselves to a GraphWriter (implemented on
// ONNX's own protobuf classes in tabby/export), next to their forward().
//
// Export runs alongside the real computation: every Value carries the
// tensor the op gives for a sample input, so shapes are known where ONNX
// wants them static (pads of "same" convolutions, pooling windows) and each
// step is the same arithmetic as forward().
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace tabby::nn {

struct Value {
  std::string name;      // the ONNX value name
  torch::Tensor sample;  // what the computation gives for the sample input (batch 1)
};

struct Attr {
  std::string name;
  std::variant<int64_t, float, std::vector<int64_t>, std::vector<float>, std::string> value;
};

class GraphWriter {
 public:
  virtual ~GraphWriter() = default;
  virtual int opset() const = 0;
  // A constant (weights, shapes): an initializer named after `hint`.
  virtual std::string constant(const std::string& hint, const torch::Tensor& value) = 0;
  // One node; `result` is its output for the sample input.
  virtual Value node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<Attr>& attrs,
                     const torch::Tensor& result) = 0;
};

// Modules that are more than a chain of standard ones (residual blocks,
// squeeze-excitation, ...) implement this beside their forward().
class OnnxExportable {
 public:
  virtual ~OnnxExportable() = default;
  virtual Value export_onnx(GraphWriter& g, const Value& x) = 0;
};

// The standard pieces, each computing its sample result as forward() does.
Value export_module(GraphWriter& g, torch::nn::Module& module, const Value& x);  // any module tabby builds
Value export_conv(GraphWriter& g, torch::nn::Conv2dImpl& conv, const Value& x);
// Conv2d followed by BatchNorm2d in inference mode, folded into one Conv as conv_bn() computes it.
Value export_conv_bn(GraphWriter& g, torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn, const Value& x);
Value export_relu(GraphWriter& g, const Value& x);
Value export_relu6(GraphWriter& g, const Value& x);
Value export_hardsigmoid(GraphWriter& g, const Value& x);
Value export_hardswish(GraphWriter& g, const Value& x);
Value export_sigmoid(GraphWriter& g, const Value& x);
// x * sigmoid(x), as torch.nn.SiLU (ONNX has no SiLU op).
Value export_silu(GraphWriter& g, const Value& x);
// The exact GELU, 0.5 x (1 + erf(x / sqrt 2)), as torch.nn.GELU's default.
Value export_gelu(GraphWriter& g, const Value& x);
Value export_add(GraphWriter& g, const Value& a, const Value& b);
Value export_mul(GraphWriter& g, const Value& a, const Value& b);
// Layer norm over one axis of x with per-element weight and bias along it;
// `result` is what forward() gives. LayerNormalization from opset 17 (last
// axis only), else its arithmetic in ReduceMean / Sub / Mul / Sqrt / Div.
Value export_layer_norm(GraphWriter& g, const Value& x, int64_t axis, const torch::Tensor& weight,
                        const torch::Tensor& bias, double eps, const torch::Tensor& result);
// x (..., in) times a constant weight (out, in), as torch's linear on the
// last axis of a tensor of any rank: MatMul then Add (Gemm takes 2-D only).
Value export_linear_last_axis(GraphWriter& g, torch::nn::LinearImpl& linear, const Value& x);
// x * mul + add with one (mul, add) per channel of x (B,C,H,W), as a depthwise
// 1x1 Conv: OpenCV 4.6 refuses Mul/Add of a (1,C,1,1) constant.
Value export_channel_affine(GraphWriter& g, const std::string& hint, const torch::Tensor& mul, const torch::Tensor& add,
                            const Value& x);
// x (B,C,H,W) times scale (B,C,1,1), squeeze-excitation's last step; the scale
// is spread over HxW by a nearest Resize first, since OpenCV 4.6 cannot
// broadcast a Mul of two graph values.
Value export_scale_channels(GraphWriter& g, const Value& x, const Value& scale);
Value export_global_average_pool(GraphWriter& g, const Value& x);  // (B,C,H,W) -> (B,C,1,1)
Value export_flatten(GraphWriter& g, const Value& x);              // -> (B, rest)
Value export_linear(GraphWriter& g, torch::nn::LinearImpl& linear, const Value& x);
Value export_max_pool(GraphWriter& g, const Value& x, std::vector<int64_t> kernel, std::vector<int64_t> stride,
                      std::vector<int64_t> pads, bool ceil_mode);  // pads: top, left, bottom, right
// adaptive_avg_pool2d to `size` where ONNX can say it: a global pool, the
// identity, or an exact window; tabby::Error otherwise.
Value export_adaptive_average_pool(GraphWriter& g, const Value& x, int64_t size);

}  // namespace tabby::nn
