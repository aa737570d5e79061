// What a user names as a run's data (--data, --split, --val, ...), as plain
// settings: recorded in run.json so evaluate, report and --resume find the
// same images again. api/data_source.h turns them into datasets.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  // Restrict/order classes (a run's classes when evaluating); not recorded.
  std::optional<std::vector<std::string>> class_names;
};

// The data arguments as a run's run.json stores them, and back (class names aside).
// Reading: a present key of the wrong type is a tabby::Error naming `source`.
nlohmann::json data_args_to_json(const DataArgs& args);
DataArgs data_args_from_json(const nlohmann::json& j, const std::string& source = "run data");

// "DIR, split train[:40%], val_split train[40%:50%]": the data as a person named it.
std::string describe_data_args(const DataArgs& args);

}  // namespace tabby
