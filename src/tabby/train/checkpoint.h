// The resumable state of a run in one safetensors file, replaced atomically
// after every epoch: model weights ("model/<name>"), the optimiser's state
// (serialised by LibTorch, stored as a U8 tensor "optimizer/state"), and the
// trainer's progress as JSON metadata (epoch, phase, history, callbacks, lr).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tabby/nn/network.h"
#include "tabby/train/history.h"

namespace tabby {

struct CheckpointInfo {
  int epochs_done = 0;
  std::string phase;
  std::vector<EpochRecord> history;
  nlohmann::json state;  // lr, callbacks
};

struct CheckpointData : CheckpointInfo {
  nn::TensorMap weights;
  std::string optimizer_state;
};

void write_checkpoint(const std::filesystem::path& file, const nn::NetworkImpl& net,
                      torch::optim::Optimizer& optimizer, const CheckpointInfo& info);
// Reads a checkpoint; a missing or damaged file is a tabby::Error.
CheckpointData read_checkpoint(const std::filesystem::path& file);

}  // namespace tabby
