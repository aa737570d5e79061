// A model built from a ModelSpec: the ordered layers as one LibTorch module.
// Input is a float batch (B,3,H,W) of pixel values in [0, 255] (the cached
// uint8 images, converted); preprocessing is part of the model, as in Keras,
// so a saved run needs nothing else to predict. The output is always logits:
// the declared final activation (softmax / sigmoid) is applied by
// probabilities(), and the loss (train/criterion.h) works on logits for
// numerical stability.
//
// Weight names: layers' tensors are "<layer name>.<tensor>" ("dense.weight");
// a backbone's are torchvision's own ("features.0.0.weight"), so the weights
// of a backbone model load into torchvision.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

#include "tabby/config/model_spec.h"
#include "tabby/nn/graph_writer.h"
#include "tabby/nn/keras_layers.h"
#include "tabby/nn/state_dict.h"
#include "tabby/nn/zoo/backbone.h"

namespace tabby::nn {

struct NetworkEntry {
  std::string name;
  std::string type;
  Layer layer;        // null for the backbone
  Backbone backbone;  // set only for the Backbone layer
  std::vector<int64_t> output_shape;  // without batch: {C,H,W} or {F}
  bool augmentation() const { return layer && layer->is_augmentation(); }
};

class NetworkImpl : public torch::nn::Module {
 public:
  // Builds the layers for `num_classes` classes and input images of height x
  // width; weights are freshly initialised (see load_pretrained_weights).
  NetworkImpl(const ModelSpec& spec, int64_t num_classes, int64_t height, int64_t width);

  // x is (B,3,H,W) in [0,255] -> logits (B,units). Augmentation layers run
  // only in training mode.
  torch::Tensor forward(torch::Tensor x);
  // Runs layers [begin, end) only; forward == forward_range(x, 0, size()).
  torch::Tensor forward_range(torch::Tensor x, size_t begin, size_t end);
  // Applies the output activation: (B,num_classes) probabilities. A one-unit
  // sigmoid output becomes two columns (1-p, p) so every caller sees one
  // probability per class.
  torch::Tensor probabilities(const torch::Tensor& logits) const;
  // Predicted class per row: (B,) int64.
  torch::Tensor predicted_classes(const torch::Tensor& logits) const;

  // The network in inference mode, from `images` (B,3,H,W) pixel values to
  // probabilities() (B,num_classes), as ONNX nodes (graph_writer.h).
  Value export_onnx(GraphWriter& g, const Value& images);

  const std::vector<NetworkEntry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  const OutputHead& output() const { return output_; }
  int64_t num_classes() const { return num_classes_; }
  std::vector<int64_t> input_shape() const { return {3, height_, width_}; }
  const ModelSpec& spec() const { return spec_; }

  // The backbone and its position, when the model has one.
  Backbone backbone() const;
  std::optional<size_t> backbone_index() const { return backbone_index_; }
  // Loads the Backbone layer's `weights` ("imagenet": resolved through
  // tabby/weights; a path; "none" does nothing). Logs what it loaded.
  void load_pretrained_weights();
  // Freezes the backbone except its last n units (n < 0: all trainable),
  // with batch norm kept in inference mode when bn_inference.
  void set_backbone_trainable_blocks(int n, bool bn_inference);

  // Layers [0, k) whose output is a fixed function of the input during
  // training: no augmentation, no trainable parameters, no batch statistics.
  // When k covers a frozen backbone, its features can be computed once per
  // image and reused every epoch (feature caching). 0 when nothing can be cached.
  size_t cacheable_prefix() const;

  // Weights under their file names (see the header comment), and loading them
  // back. Non-strict loading reports mismatches instead of throwing.
  TensorMap named_state() const;
  LoadReport load_named_state(const TensorMap& state, bool strict);

  // Stores convolution weights and feeds images in channels-last (NHWC) memory
  // order, which oneDNN's CPU convolutions (and cuDNN's tensor cores) run
  // faster. Results are the same up to float rounding. Call after moving the
  // network to its device.
  void set_channels_last(bool on);
  bool channels_last() const { return channels_last_; }

  // Parameters (and batch-norm statistics, counted as non-trainable like Keras).
  int64_t count_trainable() const;
  int64_t count_non_trainable() const;

 private:
  void decide_output();

  ModelSpec spec_;
  int64_t num_classes_, height_, width_;
  std::vector<NetworkEntry> entries_;
  std::optional<size_t> backbone_index_;
  OutputHead output_;
  bool channels_last_ = false;
};
TORCH_MODULE(Network);

// Parameters + Keras-counted buffers of one module: {trainable, non_trainable}.
std::pair<int64_t, int64_t> count_keras_params(const torch::nn::Module& module);

}  // namespace tabby::nn
