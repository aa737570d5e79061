// From what a user names on the command line to the datasets of a run:
//   --data DIR                 a folder with one sub-folder per class
//   --data FILE.csv            a CSV of path,label
//   --data ROOT --split SPEC   TFDS-style slices: 'train[:40%]'
//   --val DIR | --val-split SPEC | --validation-split F
//   --test DIR | --test-split SPEC | --test-fraction F
// Fractions split the training data with the seed (Keras semantics for
// folders; stratified for CSV files or with --stratify).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "tabby/dataset/dataset.h"

namespace tabby {

struct DataArgs {
  std::string data;
  std::string split;
  std::string val;
  std::string val_split;
  double validation_split = 0;
  std::string test;
  std::string test_split;
  double test_fraction = 0;
  bool stratify = false;
  uint64_t seed = 1337;
  // Restrict/order classes (a run's classes when evaluating).
  std::optional<std::vector<std::string>> class_names;
};

struct ResolvedData {
  Dataset train;
  std::optional<Dataset> validation;
  std::optional<Dataset> test;
  nlohmann::json description;  // recorded in run.json
};

ResolvedData resolve_data(const DataArgs& args);

// The data arguments as a run's run.json stores them, and back (class names aside).
nlohmann::json data_args_to_json(const DataArgs& args);
DataArgs data_args_from_json(const nlohmann::json& j);

// One dataset from a folder, CSV file or ROOT+split, with optional class list.
Dataset load_dataset(const std::string& path, const std::string& split,
                     const std::optional<std::vector<std::string>>& class_names);

// Checks a dataset for training: at least two classes, each with samples.
void require_trainable(const Dataset& dataset);

}  // namespace tabby
