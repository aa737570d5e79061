// A finished run folder (run/run_files.h) on the engine's side: its weights
// files, and loading a run ready to predict — what evaluate, predict, serve
// and export need, below the trainer.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "tabby/config/model_spec.h"
#include "tabby/nn/network.h"
#include "tabby/run/run_files.h"
#include "tabby/run/run_record.h"

namespace tabby {

namespace fs = std::filesystem;

// RUN/model.toml; a clear error when it is damaged.
ModelSpec read_run_model(const fs::path& dir);

// Writes the network's weights as safetensors with metadata describing them.
void save_weights(const fs::path& file, const nn::NetworkImpl& net, const std::map<std::string, std::string>& metadata = {});
// The same for weights held apart from a network (a moving average), by the network's names.
void save_weights(const fs::path& file, const nn::TensorMap& weights, const std::map<std::string, std::string>& metadata);
// Loads weights saved by save_weights (strict: every tensor must match).
void load_weights(const fs::path& file, nn::NetworkImpl& net);

// RUN/WEIGHTS_FILE, or an error that says why it is not there (an unfinished
// run: how to resume it; a finished one: the file was lost).
fs::path require_weights_file(const fs::path& dir, const RunRecord& record,
                              const std::string& weights_file = run_files::kWeights);

// A run ready to use: its record, model and network with the kept weights, on
// `device`, in eval mode.
struct LoadedRun {
  fs::path dir;
  RunRecord record;
  ModelSpec model;
  nn::Network net{nullptr};

  const RunSettings& settings() const { return record.settings; }
};
LoadedRun load_run(const fs::path& dir, const torch::Device& device, const std::string& weights_file = run_files::kWeights);

}  // namespace tabby
