// The resumable state of a run in one safetensors file, replaced atomically
// after every epoch: model weights ("model/<name>"), the optimiser's state
// (serialised by LibTorch, stored as a U8 tensor "optimizer/state"), and the
// trainer's progress (run/trainer_state.h) as JSON metadata, and, when the
// run keeps one, the moving average of the weights ("ema/<name>").
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "tabby/nn/network.h"
#include "tabby/run/trainer_state.h"

namespace tabby {

struct CheckpointData {
  TrainerState state;
  nn::TensorMap weights;
  std::string optimizer_state;
  nn::TensorMap averaged_weights;  // empty: the run keeps no average
};

void write_checkpoint(const std::filesystem::path& file, const nn::NetworkImpl& net,
                      torch::optim::Optimizer& optimizer, const TrainerState& state,
                      const nn::TensorMap* averaged_weights = nullptr);
// Reads a checkpoint; a missing or damaged file is a tabby::Error.
CheckpointData read_checkpoint(const std::filesystem::path& file);
// The same from the file's bytes (sent by another rank); `source` names it in errors.
CheckpointData parse_checkpoint(const std::string& bytes, const std::string& source);

}  // namespace tabby
