// Augmentation of whole batches outside a model, e.g. by a trainer that
// augments the decoded batches before the network sees them:
//
//   tabby::nn::BatchAugmenter augment(tabby::parse_augment_spec("flip,crop=0.5,trivial"));
//   torch::Tensor out = augment(batch);  // batch: (B,3,H,W) float in [0, 255]
//
// The layers are the model files' augmentation layers (RandomFlip,
// RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
// RandomResizedCrop, RandomColorJitter, TrivialAugmentWide, RandAugment), in
// training mode, applied in order on the batch's device (CPU or CUDA) without
// autograd. Each image gets its own random parameters, drawn from LibTorch's
// default generator (seed it per step for reproducible runs). Colour layers
// clamp to `value_range`, [0, 255] unless a layer says otherwise. The output
// has the input's shape and dtype.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "tabby/config/model_spec.h"
#include "tabby/nn/keras_layers.h"

namespace tabby::nn {

class BatchAugmenter {
 public:
  // UsageError for a layer that is not an augmentation layer or has bad settings.
  explicit BatchAugmenter(const std::vector<LayerSpec>& layers);
  torch::Tensor operator()(const torch::Tensor& batch) const;
  bool empty() const { return layers_.empty(); }

 private:
  std::vector<Layer> layers_;
};

}  // namespace tabby::nn
