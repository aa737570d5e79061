#include "tabby/train/criterion.h"

#include "tabby/inference/evaluate.h"

namespace tabby {

namespace F = torch::nn::functional;

Criterion::Criterion(bool binary, int64_t num_classes, double label_smoothing)
    : binary_(binary), classes_(binary ? 2 : num_classes), smoothing_(label_smoothing) {}

torch::Tensor Criterion::target_distribution(const Targets& t, const torch::TensorOptions& options) const {
  torch::Tensor q;
  if (binary_) {
    q = t.labels.to(options);
    if (t.mixed()) q = q * t.weight + t.mixed_labels.to(options) * (1.0 - t.weight);
    return q * (1.0 - smoothing_) + smoothing_ / 2.0;
  }
  q = F::one_hot(t.labels, classes_).to(options);
  if (t.mixed()) q = q * t.weight + F::one_hot(t.mixed_labels, classes_).to(options) * (1.0 - t.weight);
  return q * (1.0 - smoothing_) + smoothing_ / static_cast<double>(classes_);
}

torch::Tensor Criterion::mean(const torch::Tensor& logits, const Targets& t) const {
  const bool plain = smoothing_ == 0.0 && !t.mixed();
  if (binary_) {
    const auto z = logits.view({-1});
    const auto q = plain ? t.labels.to(z.dtype()) : target_distribution(t, z.options());
    return F::binary_cross_entropy_with_logits(z, q);
  }
  if (plain) return F::cross_entropy(logits, t.labels);
  const auto q = target_distribution(t, logits.options());
  return -(q * F::log_softmax(logits, F::LogSoftmaxFuncOptions(1))).sum(1).mean();
}

torch::Tensor Criterion::per_sample(const torch::Tensor& logits, const torch::Tensor& labels) const {
  return per_sample_loss(binary_, logits, labels);
}

Criterion criterion_for(const nn::NetworkImpl& net, double label_smoothing) {
  return Criterion(net.output().binary(), net.num_classes(), label_smoothing);
}

}  // namespace tabby
