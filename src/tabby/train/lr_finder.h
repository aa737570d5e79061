// The learning-rate range test (Leslie Smith 2015; fastai's lr_find): train
// from the model's starting weights for a number of steps while the learning
// rate grows exponentially from `start_lr` to `end_lr`, record the loss, and
// stop once the smoothed loss exceeds `diverge_factor` times its minimum.
// The suggested rate lies in the middle of the longest "valley": the longest
// run of steps (not necessarily adjacent) over which the smoothed loss keeps
// falling — fastai's `valley` rule, which holds up when the loss is noisy or
// starts high. The minimum's rate / 10 (fastai 1's rule) and the rate where
// the loss falls fastest are reported beside it. The network's weights are
// changed: run it on a network built for the purpose.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "tabby/config/train_options.h"
#include "tabby/nn/network.h"
#include "tabby/pipeline/image_cache.h"

namespace tabby {

struct LrFindOptions {
  double start_lr = 1e-7;
  double end_lr = 10.0;
  int steps = 100;
  double smoothing = 0.98;  // of the loss's exponential average (bias-corrected)
  double diverge_factor = 4.0;
};

struct LrFindResult {
  std::vector<double> lrs;       // per step taken
  std::vector<double> losses;    // raw
  std::vector<double> smoothed;  // exponential average, bias-corrected
  double minimum_lr = 0;         // at the smallest smoothed loss
  double steepest_lr = 0;        // where the smoothed loss falls fastest per decade, before the minimum
  double valley_lr = 0;          // the middle of the longest falling stretch
  double suggested_lr = 0;       // valley_lr
  bool diverged = false;         // stopped before the last step
};

// The learning rate of step i of n: start * (end / start)^(i / (n - 1)).
double range_test_lr(const LrFindOptions& options, int step);

// Runs the test on `net` (on `device`) with `train`'s images in the
// shuffled order training would use, the optimiser, loss and parameter
// groups of `options`. UsageError for a start >= end or fewer than 5 steps.
LrFindResult find_learning_rate(nn::NetworkImpl& net, const ImageCache& train, const TrainOptions& options,
                                const torch::Device& device, const LrFindOptions& find);

// The suggestion's numbers from a recorded curve (for tests and reports).
void choose_suggestion(LrFindResult& result);

}  // namespace tabby
