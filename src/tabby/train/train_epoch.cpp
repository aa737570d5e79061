#include "tabby/train/train_epoch.h"

#include <fmt/format.h>

#include <algorithm>

#include "tabby/util/error.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

constexpr uint64_t kStepSeedPurpose = 0x53544550;  // "STEP"

std::string metrics_text(const EpochMetrics& m) {
  return fmt::format("accuracy: {:.4f} - loss: {:.4f}", m.accuracy(), m.loss());
}

void stop_if_diverged(const EpochTraining& t, const std::optional<EpochMetrics::NonFinite>& bad, int epoch) {
  if (!bad) return;
  throw Error(fmt::format("the loss became {} at epoch {}, step {}: training diverged", bad->value, epoch, bad->step),
              fmt::format("lower the learning rate (--lr {}){}, or check the input scaling of the model; "
                          "the last good checkpoint (epoch {}) is kept",
                          t.lr / 10, t.precision == Precision::fp32 ? "" : " or train in --precision fp32",
                          epoch - 1));
}

// The batch's logits in fp32 (whatever the forward pass ran in: CPU autocast
// keeps softmax in bf16) and the targets they are compared with.
std::pair<torch::Tensor, Targets> forward_mixed(EpochTraining& t, const Batch& batch) {
  MixedBatch mixed = mix_batch(batch.inputs, batch.labels, t.mix);
  torch::Tensor logits;
  {
    AutocastScope autocast(t.precision, batch.inputs.device());
    logits = t.net.forward_range(mixed.inputs, t.first_layer, t.net.size());
  }
  return {logits.to(torch::kFloat32), std::move(mixed.targets)};
}

torch::Tensor forward_loss(EpochTraining& t, const Batch& batch, EpochMetrics& metrics) {
  auto [logits, targets] = forward_mixed(t, batch);
  auto loss = t.criterion->mean(logits, targets);
  metrics.add(loss, t.net.predicted_classes(logits.detach()).eq(batch.labels).sum(), batch.labels.size(0));
  return loss;
}

void step_optimizer(EpochTraining& t) {
  if (t.scaler.step(t.optimizer, t.params) && t.average) t.average->update(t.net);
}

void apply_gradients(EpochTraining& t, const torch::Tensor& loss) {
  t.optimizer.zero_grad();
  t.scaler.scale_loss(loss).backward();
  step_optimizer(t);
}

// A step of one rank in a data-parallel job. Each rank's loss is its rows' mean
// scaled by its share of the global batch, so the summed gradients are those
// of the global batch's mean loss: what one process would compute on it.
void data_parallel_step(EpochTraining& t, const Batch& batch, int epoch, EpochMetrics& metrics, bool read_metrics) {
  if (t.buffers) t.buffers->broadcast(*t.group);
  const int64_t rows = batch.labels.size(0);
  const auto device = batch.labels.device();
  torch::Tensor stats = torch::zeros({2}, torch::TensorOptions().dtype(torch::kFloat64).device(device));
  t.optimizer.zero_grad();
  if (rows > 0) {
    auto [logits, targets] = forward_mixed(t, batch);
    const auto loss = t.criterion->mean(logits, targets);
    const double share = static_cast<double>(rows) / static_cast<double>(batch.global_rows);
    t.scaler.scale_loss(loss * share).backward();
    const auto correct = t.net.predicted_classes(logits.detach()).eq(batch.labels).sum();
    stats = torch::stack({loss.detach().to(torch::kFloat64) * static_cast<double>(rows), correct.to(torch::kFloat64)});
  }
  t.gradients->sum(*t.group, stats);
  metrics.add(stats[0] / static_cast<double>(batch.global_rows), stats[1], batch.global_rows);
  if (read_metrics) stop_if_diverged(t, metrics.read(), epoch);
  step_optimizer(t);
}

}  // namespace

void train_step(EpochTraining& t, const Batch& batch, int epoch, int64_t step, EpochMetrics& metrics,
                bool read_metrics) {
  if (t.before_step) t.before_step(step);
  if (t.group) {
    // Each rank draws its own dropout masks and augmentations.
    torch::manual_seed(derive_seed(t.seed, {kStepSeedPurpose, static_cast<uint64_t>(epoch),
                                            static_cast<uint64_t>(step - 1), static_cast<uint64_t>(t.group->rank())}));
    data_parallel_step(t, batch, epoch, metrics, read_metrics);
    return;
  }
  torch::manual_seed(
      derive_seed(t.seed, {kStepSeedPurpose, static_cast<uint64_t>(epoch), static_cast<uint64_t>(step - 1)}));
  const auto loss = forward_loss(t, batch, metrics);
  // Read before the update, so a non-finite loss never reaches the weights.
  if (read_metrics) stop_if_diverged(t, metrics.read(), epoch);
  apply_gradients(t, loss);
}

EpochTotals train_one_epoch(EpochTraining& t, BatchLoader& loader, int epoch, ProgressLine& progress) {
  t.net.train();
  loader.start_epoch(epoch);
  EpochMetrics metrics(t.read_every);
  const int64_t steps = loader.num_batches();
  int64_t step = 0;
  while (auto batch = loader.next()) {
    ++step;
    const bool read_now = metrics.pending() + 1 >= std::max<int64_t>(1, t.read_every) || step == steps;
    train_step(t, *batch, epoch, step, metrics, read_now);
    if (read_now) progress.update(step, metrics_text(metrics));
  }
  stop_if_diverged(t, metrics.read(), epoch);
  return {metrics.loss(), metrics.accuracy()};
}

}  // namespace tabby
