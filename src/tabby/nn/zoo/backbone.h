// Pretrained-backbone model zoo: torchvision architectures rebuilt in LibTorch
// with torchvision's module structure, so parameter and buffer names (and
// shapes) are exactly torchvision's: any torchvision state dict loads here and
// ours load back into torchvision.
//
// A backbone is used either whole (include_top: torchvision's ImageNet
// classifier, `num_classes` outputs) or as a feature extractor (forward_features:
// the last feature map, what Keras calls include_top=False without pooling),
// followed by a head built elsewhere.
//
// Freezing and fine-tuning count *units*: torchvision blocks that hold
// parameters (an inverted-residual block "features.5", a ResNet block
// "layer4.1", a VGG conv "features.28", a classifier layer "classifier.1").
// Keras counts layers instead; a unit here is coarser for MobileNet and ResNet.
#pragma once

#include "tabby/nn/graph_writer.h"
#include "tabby/nn/state_dict.h"

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tabby::nn {

// True when the parameter or module `name` is `prefix` itself or lies under it
// ("features.1" covers "features.1.conv.0.0.weight" but not "features.10.…").
bool lies_under(const std::string& name, const std::string& prefix);

class BackboneImpl : public torch::nn::Module {
 public:
  BackboneImpl(std::string arch, bool include_top, int64_t num_classes);

  // x is (B,3,H,W), already normalised as the weights expect (ImageNet mean/std
  // for torchvision weights). Returns the last feature map (B,C,h,w).
  virtual torch::Tensor forward_features(torch::Tensor x) = 0;
  // torchvision's pooling + classifier on a feature map (B,C,h,w) → logits
  // (B,num_classes). Throws tabby::Error when built without the top.
  virtual torch::Tensor forward_top(torch::Tensor features) = 0;
  // Features, then the top when include_top: (B,num_classes) or (B,C,h,w).
  torch::Tensor forward(torch::Tensor x);

  // The same three as ONNX nodes (graph_writer.h), in inference mode.
  virtual Value export_features(GraphWriter& g, const Value& x) = 0;
  virtual Value export_top(GraphWriter& g, const Value& features) = 0;
  Value export_onnx(GraphWriter& g, const Value& x);

  // C of the feature map: 1280 mobilenet_v2, 960 / 576 mobilenet_v3_large /
  // small, 512 resnet18, 2048 resnet50, 512 vgg16, 512 squeezenet1_1, 1280 /
  // 1280 / 1408 / 1536 efficientnet_b0..b3, 1280 efficientnet_v2_s, 768
  // convnext_tiny, 440 regnet_y_400mf, 768 vit_b_16.
  virtual int64_t feature_channels() const = 0;
  bool include_top() const { return include_top_; }
  int64_t num_classes() const { return num_classes_; }
  const std::string& arch() const { return arch_; }

  // Fine-tuning units in input→output order, each a parameter-name prefix
  // ("features.17", "layer4.1", "classifier.1"); every unit holds parameters.
  // Top units are listed only when include_top.
  virtual std::vector<std::string> blocks() const = 0;
  // Prefixes of the top's parameters ("classifier" or "fc"), whether or not the
  // top is built: used to drop the top from a full state dict.
  virtual std::vector<std::string> top_prefixes() const = 0;

  // Renames tensors of an older torchvision's state dict to today's names, as
  // torchvision's own _load_from_state_dict hooks do (ViT's MLP). Called by
  // load_backbone_state before matching names; the default renames nothing.
  virtual void upgrade_state_names(TensorMap& state) const { (void)state; }

  // requires_grad false for every parameter, then true for the last n units
  // (n = 0: all frozen; n < 0 or n >= blocks().size(): all trainable).
  // Frozen units are kept in inference mode (batch norm uses and keeps its
  // running statistics, dropout off) even under train(); a parameter-free
  // module between units (the dropout before a classifier layer) counts as
  // part of the unit it feeds. With `bn_inference`,
  // every batch norm — trainable units' too — stays in inference mode: its
  // affine weights still train, its statistics never move (Keras' fine-tuning
  // advice). A fresh backbone is all trainable with batch norm training normally.
  void set_trainable_blocks(int n, bool bn_inference = true);
  // Number of trainable units set by the last set_trainable_blocks (-1 = all).
  int trainable_blocks() const { return trainable_blocks_; }
  bool bn_inference() const { return bn_inference_; }

  // Sum of parameter element counts (only those with requires_grad when
  // trainable_only).
  int64_t count_parameters(bool trainable_only) const;

  // Module::train, then puts frozen units and (with bn_inference) batch norms
  // back into inference mode. Parents' train() reaches this through the
  // virtual call, so wrapping a backbone in a bigger model keeps the rule.
  void train(bool on = true) override;

 protected:
  // Raises tabby::Error when the top is absent; for forward_top.
  void require_top() const;

 private:
  void apply_inference_modes();

  std::string arch_;
  bool include_top_;
  int64_t num_classes_;
  int trainable_blocks_ = -1;
  bool bn_inference_ = false;
};

using Backbone = std::shared_ptr<BackboneImpl>;

struct BackboneOptions {
  bool include_top = false;
  int64_t num_classes = 1000;  // matters only with include_top
  // Drop probability of the deepest residual branch in training (torchvision's
  // StochasticDepth, "row" mode); unset: the registry's default for the arch
  // (config/backbone_table.h). Archs without stochastic depth ignore it.
  std::optional<double> stochastic_depth;
};

// Builds a freshly initialised backbone (torchvision's initialisation).
// `arch` is a torchvision name (see backbone_archs()); unknown → UsageError
// listing the known ones.
Backbone make_backbone(const std::string& arch, const BackboneOptions& options);
Backbone make_backbone(const std::string& arch, bool include_top, int64_t num_classes = 1000);

// The registry's names (config/backbone_table.h) in its order, each of which
// has a structure here.
std::vector<std::string> backbone_archs();

// Loads a torchvision-named state dict into a backbone. Without the top, the
// file's top tensors (classifier.* / fc.*) are ignored, so a full ImageNet state
// dict loads into a feature extractor. `strict` → tabby::Error when anything
// else is missing, unexpected or of the wrong shape; nothing is copied then.
LoadReport load_backbone_state(BackboneImpl& backbone, const TensorMap& state, bool strict);

}  // namespace tabby::nn
