#include "tabby/train/lr_finder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tabby/inference/precision.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/train/criterion.h"
#include "tabby/train/optimizer.h"
#include "tabby/train/param_groups.h"
#include "tabby/util/error.h"
#include "tabby/util/progress.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

constexpr uint64_t kLrFindSeedPurpose = 0x4c524644;  // "LRFD"
// The first steps' average rests on few losses; divergence is judged after them.
constexpr int kSettleSteps = 5;

}  // namespace

double range_test_lr(const LrFindOptions& o, int step) {
  const double fraction = o.steps > 1 ? static_cast<double>(step) / (o.steps - 1) : 0.0;
  return o.start_lr * std::pow(o.end_lr / o.start_lr, fraction);
}

namespace {

// The longest strictly falling subsequence of `loss`, as the steps [first,
// last] it would fill if it were contiguous and ended where it ends: a stray
// early point that happens to lie above the valley does not stretch it.
std::pair<size_t, size_t> longest_valley(const std::vector<double>& loss) {
  const size_t n = loss.size();
  std::vector<size_t> length(n, 1);
  size_t best = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (loss[i] < loss[j]) length[i] = std::max(length[i], length[j] + 1);
    }
    if (length[i] > length[best]) best = i;
  }
  return {best + 1 - length[best], best};
}

}  // namespace

void choose_suggestion(LrFindResult& r) {
  if (r.smoothed.empty()) return;
  const size_t lowest =
      static_cast<size_t>(std::min_element(r.smoothed.begin(), r.smoothed.end()) - r.smoothed.begin());
  r.minimum_lr = r.lrs[lowest];
  const auto [first, last] = longest_valley(r.smoothed);
  r.valley_lr = r.lrs[first + (last - first) / 2];
  r.suggested_lr = r.valley_lr;
  // The first steps' average rests on few losses and jumps; the slope is read after them.
  double steepest = std::numeric_limits<double>::infinity();
  r.steepest_lr = r.lrs[std::min(lowest, static_cast<size_t>(2 * kSettleSteps))];
  for (size_t i = 2 * kSettleSteps + 1; i <= lowest; ++i) {
    const double slope = (r.smoothed[i] - r.smoothed[i - 1]) / (std::log10(r.lrs[i]) - std::log10(r.lrs[i - 1]));
    if (slope < steepest) {
      steepest = slope;
      r.steepest_lr = r.lrs[i];
    }
  }
}

LrFindResult find_learning_rate(nn::NetworkImpl& net, const ImageCache& train, const TrainOptions& o,
                                const torch::Device& device, const LrFindOptions& find) {
  if (!(find.start_lr > 0) || !(find.end_lr > find.start_lr)) {
    throw UsageError("--start-lr must be positive and below --end-lr");
  }
  if (find.steps < kSettleSteps) throw UsageError(fmt::format("--steps must be at least {}", kSettleSteps));
  const Precision precision = resolve_precision(o.precision, device);
  const Criterion criterion = criterion_for(net, o.label_smoothing);
  const auto groups = parameter_groups(net, o);
  const auto ratios = lr_ratios(groups);
  std::vector<torch::Tensor> params;
  for (const auto& g : groups) params.insert(params.end(), g.params.begin(), g.params.end());
  auto optimizer = make_optimizer(o, find.start_lr, groups);
  LossScaler scaler(precision == Precision::fp16);
  BatchLoader loader(train.rows(), train.labels, LoaderOptions::training(o.batch_size, o.seed, device));
  LrFindResult r;
  ProgressLine progress("lr-find", find.steps);
  double average = 0, lowest = std::numeric_limits<double>::infinity();
  int64_t epoch = 0;
  loader.start_epoch(epoch);
  net.train();
  for (int step = 0; step < find.steps; ++step) {
    std::optional<Batch> batch = loader.next();
    if (!batch) {
      loader.start_epoch(++epoch);
      batch = loader.next();
    }
    torch::manual_seed(derive_seed(o.seed, {kLrFindSeedPurpose, static_cast<uint64_t>(step)}));
    const double lr = range_test_lr(find, step);
    set_learning_rates(*optimizer, lr, ratios);
    torch::Tensor logits;
    {
      AutocastScope autocast(precision, batch->inputs.device());
      logits = net.forward(batch->inputs);
    }
    const auto loss = criterion.mean(logits.to(torch::kFloat32), Targets{batch->labels});
    optimizer->zero_grad();
    scaler.scale_loss(loss).backward();
    scaler.step(*optimizer, params);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      r.diverged = true;
      break;
    }
    average = find.smoothing * average + (1 - find.smoothing) * value;
    const double smoothed = average / (1 - std::pow(find.smoothing, step + 1));
    r.lrs.push_back(lr);
    r.losses.push_back(value);
    r.smoothed.push_back(smoothed);
    lowest = std::min(lowest, smoothed);
    progress.update(step + 1, fmt::format("lr {:.2e} - loss {:.4f}", lr, smoothed));
    if (step >= kSettleSteps && smoothed > find.diverge_factor * lowest) {
      r.diverged = true;
      break;
    }
  }
  progress.finish(r.diverged ? "the loss diverged: stopped" : "done");
  net.eval();
  if (r.lrs.empty()) throw Error("the loss was not finite at the first step", "check the data and the model");
  choose_suggestion(r);
  return r;
}

}  // namespace tabby
