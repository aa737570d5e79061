// A run folder: everything needed to evaluate, predict with, report on or
// resume a training run, by its path alone.
//
//   RUN/model.toml             the resolved model (usable again with --model)
//   RUN/run.json               classes, image size, data, options, status, results
//   RUN/classes.txt            class names, one per line (label order)
//   RUN/weights.safetensors    the kept weights (torchvision names for backbones)
//   RUN/history.csv            one row per epoch
//   RUN/checkpoint.safetensors the latest epoch's full state, for --resume
//   RUN/best.safetensors       weights of the best epoch so far
// Every file is written atomically (temporary file + rename).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tabby/config/model_spec.h"
#include "tabby/config/train_options.h"
#include "tabby/nn/network.h"

namespace tabby {

namespace fs = std::filesystem;

namespace run_files {
inline const char* kModel = "model.toml";
inline const char* kRunJson = "run.json";
inline const char* kClasses = "classes.txt";
inline const char* kWeights = "weights.safetensors";
inline const char* kHistory = "history.csv";
inline const char* kCheckpoint = "checkpoint.safetensors";
inline const char* kBest = "best.safetensors";
}  // namespace run_files

struct RunConfig {
  ModelSpec model;
  std::vector<std::string> class_names;
  int64_t height = 0, width = 0;
  bool crop_to_aspect = false;
  TrainOptions train;
  nlohmann::json data = nlohmann::json::object();  // how the data was named
  std::string device = "auto";
};

// Starts a run folder: refuses a folder that already holds a run unless
// `overwrite` (then the old run's files are removed).
void create_run(const fs::path& dir, const RunConfig& config, bool overwrite);
// Reads a run folder's configuration; a clear error when `dir` is not a run.
RunConfig read_run_config(const fs::path& dir);
nlohmann::json read_run_json(const fs::path& dir);
// Merges `patch` into run.json (status, results, timings).
void update_run_json(const fs::path& dir, const nlohmann::json& patch);
bool is_run_dir(const fs::path& dir);

// Writes the network's weights as safetensors with metadata describing them.
void save_weights(const fs::path& file, const nn::NetworkImpl& net, const std::map<std::string, std::string>& metadata = {});
// Loads weights saved by save_weights (strict: every tensor must match).
void load_weights(const fs::path& file, nn::NetworkImpl& net);

// A run ready to use: its configuration and network with the kept weights, on `device`, in eval mode.
struct LoadedRun {
  RunConfig config;
  nn::Network net{nullptr};
  fs::path dir;
};
LoadedRun load_run(const fs::path& dir, const torch::Device& device, const std::string& weights_file = run_files::kWeights);

}  // namespace tabby
