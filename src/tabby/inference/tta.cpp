#include "tabby/inference/tta.h"

#include "tabby/util/error.h"

namespace tabby {

Tta parse_tta(const std::string& word) {
  if (auto t = enum_from_name<Tta>(word)) return *t;
  throw UsageError("--tta " + word + ": unknown test-time augmentation", "use " + enum_choices<Tta>());
}

torch::Tensor forward_with_tta(nn::NetworkImpl& net, const torch::Tensor& x, size_t first_layer, Tta tta) {
  torch::Tensor logits = net.forward_range(x, first_layer, net.size());
  if (tta == Tta::none) return logits;
  if (first_layer != 0) throw Error("test-time augmentation needs images, not cached features");
  const torch::Tensor mirrored = net.forward_range(x.flip({3}), 0, net.size());
  return (logits + mirrored) / 2;
}

}  // namespace tabby
