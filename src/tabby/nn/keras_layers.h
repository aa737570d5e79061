// The layers a model config can declare (Keras vocabulary, plus a ResNet
// basic block that Keras spells with its functional API), as LibTorch
// modules. Every layer takes and returns NCHW tensors (or (B,F) after Flatten
// / global pooling); shapes are printed Keras-style (None, H, W, C) by the
// summary. Parameter names are the PyTorch ones ("weight", "bias",
// "running_mean"), under the layer's name ("conv2d.weight").
//
// Initialisation follows Keras (Glorot-uniform kernels, zero biases) so the
// tutorials' models train as they do there.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "tabby/config/model_spec.h"
#include "tabby/nn/graph_writer.h"

namespace tabby::nn {

enum class ActivationKind { None, ReLU, Sigmoid, Softmax, Tanh, GELU, Swish };
ActivationKind parse_activation(const std::string& name, const std::string& where);
const char* activation_name(ActivationKind kind);
torch::Tensor apply_activation(ActivationKind kind, const torch::Tensor& x);
Value export_activation(GraphWriter& g, ActivationKind kind, const Value& x);

// Base of every declarable layer.
class LayerImpl : public torch::nn::Module {
 public:
  explicit LayerImpl(std::string type) : type_(std::move(type)) {}
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  const std::string& type() const { return type_; }
  // Augmentation layers act only in training mode; the network skips them otherwise.
  virtual bool is_augmentation() const { return false; }
  // True when forward is a fixed function in inference mode and has no
  // trainable parameters (preprocessing, pooling, frozen parts): its outputs
  // can be cached.
  virtual bool is_deterministic_when_frozen() const { return false; }
  // The layer in inference mode as ONNX nodes (graph_writer.h).
  virtual Value export_onnx(GraphWriter& g, const Value& x);

 private:
  std::string type_;
};
using Layer = std::shared_ptr<LayerImpl>;

// The last layer's activation, lifted out of the layer so training works on
// logits (stable cross-entropy) and prediction applies it.
struct OutputHead {
  int64_t units = 0;
  ActivationKind activation = ActivationKind::None;  // Softmax, Sigmoid or None
  bool binary() const { return units == 1; }
};

// Dense layers that are the model's output report their activation so the
// network can strip it (see OutputHead).
class DenseImpl;

// Builds the module for one spec. `in_channels` / `in_features` come from the
// previous layer's output (shape without batch: {C,H,W} or {F}); `units` of an
// output Dense without explicit units is `num_classes`.
Layer make_layer(const LayerSpec& spec, const std::vector<int64_t>& input_shape, int64_t num_classes);

class Conv2DImpl : public LayerImpl {
 public:
  Conv2DImpl(const LayerSpec& spec, int64_t in_channels);
  torch::Tensor forward(torch::Tensor x) override;
  Value export_onnx(GraphWriter& g, const Value& x) override;

 private:
  torch::Tensor preactivation(torch::Tensor x);

  int64_t kh_, kw_, sh_, sw_;
  bool same_;
  ActivationKind activation_;
  torch::Tensor weight_, bias_;
};

class DenseImpl : public LayerImpl {
 public:
  DenseImpl(const LayerSpec& spec, int64_t in_features, int64_t num_classes);
  torch::Tensor forward(torch::Tensor x) override;
  Value export_onnx(GraphWriter& g, const Value& x) override;
  int64_t units() const { return units_; }
  ActivationKind activation() const { return activation_; }
  // Makes forward return pre-activation values (the network applies them).
  void emit_logits() { activation_ = ActivationKind::None; }

 private:
  int64_t units_;
  ActivationKind activation_;
  torch::Tensor weight_, bias_;
};

class ActivationLayerImpl : public LayerImpl {
 public:
  explicit ActivationLayerImpl(const LayerSpec& spec);
  torch::Tensor forward(torch::Tensor x) override { return apply_activation(activation_, x); }
  Value export_onnx(GraphWriter& g, const Value& x) override { return export_activation(g, activation_, x); }
  ActivationKind activation() const { return activation_; }
  void emit_logits() { activation_ = ActivationKind::None; }

 private:
  ActivationKind activation_;
};

// Shape of a layer's output for an input shape (without batch), computed by a
// forward pass on zeros in inference mode.
std::vector<int64_t> infer_output_shape(LayerImpl& layer, const std::vector<int64_t>& input_shape);

}  // namespace tabby::nn
