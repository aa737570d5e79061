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

#include "tabby/dataset/data_args.h"
#include "tabby/dataset/dataset.h"

namespace tabby {

struct ResolvedData {
  Dataset train;
  std::optional<Dataset> validation;
  std::optional<Dataset> test;
  nlohmann::json description;  // recorded in run.json
};

ResolvedData resolve_data(const DataArgs& args);

// One dataset from a folder, CSV file or ROOT+split, with optional class list.
Dataset load_dataset(const std::string& path, const std::string& split,
                     const std::optional<std::vector<std::string>>& class_names);

// Checks a dataset for training: at least two classes, each with samples.
void require_trainable(const Dataset& dataset);

}  // namespace tabby
