// An experiment file: several models trained one after another on the same
// data split, then compared (`tabby run EXPERIMENT.toml`). This file only
// parses and checks the TOML; the engine (tabby/api/experiment.h) runs it.
//
//   name = "cats-vs-dogs-tutorial"        # optional; default: the file's stem
//   description = "..."                   # optional
//   out = "runs/cats-vs-dogs-tutorial"    # optional; --out overrides
//
//   [data]                                # shared by every model
//   data = "../shared/datasets/cats_and_dogs_filtered"
//   split = "train"                       # TFDS-style slices of `data`
//   val_split = "validation[20%:]"        # or val = DIR, or validation_split = 0.2
//   test_split = "validation[:20%]"       # or test = DIR, or test_fraction = 0.1
//   stratify = false                      # fraction splits keep class shares
//   seed = 1337                           # the split (and training) seed
//   image_size = 150                      # N, [H, W] or "HxW"
//   crop_to_aspect = false
//
//   [train]                               # defaults for every model
//   epochs = 20                           # any key of a model file's [train]
//
//   [[models]]                            # one table per model, trained in order
//   name = "1-cnn"                        # folder name under the output folder
//   model = "tutorial-cnn"                # preset name or model .toml file
//   description = "..."                   # optional
//   image_size = 160                      # optional, overrides [data]
//   weights = "imagenet"                  # optional backbone overrides:
//   freeze_backbone = true                #   weights, freeze_backbone, include_top
//   epochs = 10                           # any [train] key overrides [train]
//
// Relative paths (data, val, test, out-of-preset model files) are taken from
// the current folder; when nothing exists there, from the experiment file's
// folder; and a path starting with `shared/` or `../shared/` that exists in
// neither is looked up in the shared data roots (TABBY_SHARED, ...).
// `seed` lives in [data] only: every model must see the same split.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tabby {

// The shared data settings (the same names as `tabby train`'s flags).
struct ExperimentData {
  std::string data, split;
  std::string val, val_split;
  double validation_split = 0;
  std::string test, test_split;
  double test_fraction = 0;
  bool stratify = false;
  uint64_t seed = 1337;
  std::optional<int64_t> image_height, image_width;
  bool crop_to_aspect = false;
};

struct ExperimentModel {
  std::string name;         // folder name: letters, digits, '-', '_', '.'
  std::string model;        // preset or model file
  std::string description;
  std::optional<int64_t> image_height, image_width;
  std::optional<std::string> weights;
  std::optional<bool> freeze_backbone, include_top;
  // The [train] keys of this model: the experiment's [train] with the model's
  // own keys merged over it (nested tables such as early_stopping merge too).
  nlohmann::json train = nlohmann::json::object();
};

struct ExperimentSpec {
  std::string name;
  std::string description;
  std::string out;     // "" when the file does not say
  std::string source;  // the file, for messages
  ExperimentData data;
  nlohmann::json train = nlohmann::json::object();  // the shared [train] table as written
  std::vector<ExperimentModel> models;

  const ExperimentModel* find_model(const std::string& name) const;
};

// Parses and checks an experiment. Every problem is a tabby::Error whose
// message starts with `source`: TOML syntax, unknown keys (with the allowed
// ones), wrong types, no [[models]], a model without name or model, duplicate
// or unsafe names, bad split specs, conflicting data settings, bad fractions,
// bad image sizes, [train] values that `tabby train` would refuse, `seed`
// outside [data]. `default_name` is used when the file has no `name`.
ExperimentSpec parse_experiment_toml(const std::string& text, const std::string& source,
                                     const std::string& default_name = "experiment");

// Reads the file and resolves its relative paths (see the top of this file).
ExperimentSpec load_experiment_file(const std::filesystem::path& path);

// Everything that decides a model's training, as JSON: two runs of the same
// model with equal fingerprints train the same way. Used to tell whether a
// finished run in the output folder still matches the file.
nlohmann::json model_fingerprint(const ExperimentSpec& spec, const ExperimentModel& model);

nlohmann::json to_json(const ExperimentData& data);
nlohmann::json to_json(const ExperimentSpec& spec);

}  // namespace tabby
