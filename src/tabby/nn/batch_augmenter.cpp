#include "tabby/nn/batch_augmenter.h"

#include "tabby/util/error.h"

namespace tabby::nn {

BatchAugmenter::BatchAugmenter(const std::vector<LayerSpec>& layers) {
  for (const auto& spec : layers) {
    if (!is_augmentation_layer(spec.type)) {
      throw UsageError("'" + spec.type + "' is not an augmentation layer",
                       "use RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast, "
                       "RandomResizedCrop, RandomColorJitter, TrivialAugmentWide or RandAugment");
    }
    LayerSpec named = spec;
    if (named.name.empty()) named.name = spec.type;
    // Augmentation layers read the image size from each batch; the shape
    // given here only tells them the input is a 3-channel image.
    layers_.push_back(make_layer(named, {3, 1, 1}, 1));
    layers_.back()->train();
  }
}

torch::Tensor BatchAugmenter::operator()(const torch::Tensor& batch) const {
  if (batch.dim() != 4 || batch.size(1) != 3 || !batch.is_floating_point()) {
    throw Error("BatchAugmenter needs a (B,3,H,W) floating-point batch, got " + std::to_string(batch.dim()) +
                " dimensions");
  }
  torch::NoGradGuard no_grad;
  torch::Tensor x = batch;
  for (const auto& layer : layers_) x = layer->forward(x);
  return x;
}

}  // namespace tabby::nn
