// fit(): the training loop. One or two phases (train the model as declared;
// then optionally unfreeze the backbone's last blocks and fine-tune at a lower
// learning rate), validation after every epoch, Keras-like progress, callbacks
// (early stopping, learning-rate plateaus, best weights), and a checkpoint
// after every epoch so a killed run resumes where it stopped.
//
// Reproducibility: every random draw is seeded from (seed, epoch, step) —
// batch order, augmentation, dropout — so on the CPU a resumed run ends with
// the same weights as an uninterrupted one.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/config/train_options.h"
#include "tabby/distributed/collective.h"
#include "tabby/nn/network.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/inference/evaluate.h"
#include "tabby/run/history.h"

namespace tabby {

struct FitResult {
  std::vector<EpochRecord> history;
  bool stopped_early = false;
  int best_epoch = 0;          // by options.best_monitor; 0 when unknown
  double best_value = 0;
  KeepWeights kept = KeepWeights::last;  // which weights the network holds at the end
  bool feature_cache_used = false;
  double seconds = 0;
  // Things a person should know about the run, as printed.
  std::vector<std::string> warnings;
  // First epoch of the first streak of epochs in which every validation image got the
  // same class, once it lasted long enough to warn; 0: none. Kept across --resume.
  int collapsed_epoch = 0;
  // The validation data evaluated with the weights the network holds at the end
  // (outputs kept), from the last phase's feature cache when it had one; empty
  // when no epoch ran in this process or there is no validation data, and on
  // every rank of a data-parallel job but rank 0.
  std::optional<EvalResult> validation;
  // Data parallel: every rank's digest of its final weights matched (checked
  // by all ranks together; a mismatch is an error).
  bool replicas_identical = false;
};

struct FitContext {
  torch::Device device = torch::kCPU;
  // Run folder for checkpoints, history, best and kept weights (train/run_writer.h); empty: none written.
  std::filesystem::path run_dir;
  // Resume from run_dir's checkpoint.
  bool resume = false;
  // Test hook: stop (as if killed) after this many epochs of this process; 0: never.
  int stop_after_epochs = 0;
  // Data-parallel training with the other ranks of this group; null: this
  // process alone. Only rank 0 should be given a run_dir.
  Collective* group = nullptr;
  // Test hook: each rank also saves its final weights as rank<N>.safetensors here.
  std::filesystem::path rank_weights_dir;
};

// Trains `net` (already on ctx.device, pretrained weights loaded) on `train`,
// validating on `validation` when given. `options` must be validated.
FitResult fit(nn::NetworkImpl& net, const ImageCache& train, const ImageCache* validation, const TrainOptions& options,
              const FitContext& ctx);

}  // namespace tabby
