// One epoch of training: the step loop over a shuffled loader (the step's
// learning rate, mixing, forward under autocast, loss in fp32, backward with
// loss scaling, optimiser step, the weight average), its running loss and
// accuracy, and the check that the loss stays finite.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "tabby/distributed/collective.h"
#include "tabby/distributed/replica_sync.h"
#include "tabby/nn/network.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/train/criterion.h"
#include "tabby/train/ema.h"
#include "tabby/train/epoch_metrics.h"
#include "tabby/train/mix.h"
#include "tabby/inference/precision.h"
#include "tabby/util/progress.h"

namespace tabby {

// What the steps of an epoch train with.
struct EpochTraining {
  nn::NetworkImpl& net;
  torch::optim::Optimizer& optimizer;
  LossScaler& scaler;
  const std::vector<torch::Tensor>& params;  // the trainable ones, for loss-scaling checks
  Precision precision = Precision::fp32;
  size_t first_layer = 0;  // layers before it were computed once (feature cache)
  uint64_t seed = 0;       // the run's; each step's random draws derive from (seed, epoch, step)
  int64_t read_every = 1;  // steps between reading metrics back from the device
  double lr = 0;           // for the hint when training diverges
  // Data parallel (all three set): this rank's part of each global batch, its
  // gradients summed over the ranks before the update (distributed/replica_sync.h).
  Collective* group = nullptr;
  GradientSync* gradients = nullptr;
  BufferSync* buffers = nullptr;
  // The loss (required), and what each step does besides forward and backward.
  const Criterion* criterion = nullptr;
  MixOptions mix;
  std::function<void(int64_t step)> before_step;  // sets the step's learning rate (1-based step)
  WeightAverage* average = nullptr;               // updated after every optimiser step
};

struct EpochTotals {
  double loss = 0;
  double accuracy = 0;
};

// One step on `batch` (1-based `step` of `epoch`); its loss and correct count go
// into `metrics`. With `read_metrics` they are read back before the update, and a
// loss that is not finite stops training there (a tabby::Error naming epoch and step).
// Data parallel, the loss and counts are those of the global batch, the same on
// every rank, so every rank takes the same decision.
void train_step(EpochTraining& t, const Batch& batch, int epoch, int64_t step, EpochMetrics& metrics,
                bool read_metrics);

// Every batch of `epoch` from `loader` (net in training mode), progress drawn on
// `progress` (left unfinished for the validation metrics). A loss that is not
// finite is a tabby::Error naming the epoch and step.
EpochTotals train_one_epoch(EpochTraining& t, BatchLoader& loader, int epoch, ProgressLine& progress);

}  // namespace tabby
