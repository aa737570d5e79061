// The files fit() keeps current in a run folder, and nothing else writes:
// after every epoch best.safetensors (when the epoch improved on the best),
// history.csv, checkpoint.safetensors and run.json's progress; at the end
// weights.safetensors, the weights the run keeps. Each file is replaced
// atomically, in that order, so a run killed at any moment resumes from its
// last checkpoint with a best file at least as new.
#pragma once

#include <torch/torch.h>

#include <filesystem>

#include "tabby/config/train_options.h"
#include "tabby/distributed/collective.h"
#include "tabby/nn/network.h"
#include "tabby/run/trainer_state.h"
#include "tabby/train/checkpoint.h"

namespace tabby {

class RunWriter {
 public:
  // An empty folder: a writer that writes nothing (fit() without a run folder).
  explicit RunWriter(std::filesystem::path run_dir);

  bool writes() const { return !dir_.empty(); }
  const std::filesystem::path& dir() const { return dir_; }

  // The checkpoint to resume from (tabby::Error when there is none or it is damaged).
  CheckpointData read_checkpoint() const;
  // best.safetensors as last saved; empty when there is none.
  nn::TensorMap read_best_weights() const;
  // The same two in a data-parallel job: rank 0, whose writer has the folder,
  // reads the files and every rank gets their bytes (the other ranks may run
  // on machines that do not see the run folder).
  CheckpointData read_checkpoint(Collective& group) const;
  nn::TensorMap read_best_weights(Collective& group) const;

  // After epoch state.epochs_done. With a moving average of the weights, the
  // best file holds the average (what validation measured) and the checkpoint both.
  void epoch_finished(const nn::NetworkImpl& net, torch::optim::Optimizer& optimizer, const TrainerState& state,
                      bool improved, const nn::TensorMap* averaged_weights = nullptr) const;
  // weights.safetensors, recording which weights they are.
  void save_kept_weights(const nn::NetworkImpl& net, KeepWeights kept) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace tabby
