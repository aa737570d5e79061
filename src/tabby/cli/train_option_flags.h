// The command-line flags of the training options, made from their one
// definition (config/train_options.h): a flag per option that has one, and
// the [train] table of the flags a command line gave.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>

namespace tabby::cli {

class TrainOptionFlags {
 public:
  // Adds the flags of every option to `app` (or only of the keys in `only`,
  // when given), under each option's help group.
  explicit TrainOptionFlags(CLI::App* app, const std::set<std::string>& only = {});

  // The keys the given flags set, as a [train] table (callback tables nested);
  // a flag of a callback's setting switches the callback on, as its own flag
  // would. UsageError for a value of the wrong kind ("--epochs ten").
  nlohmann::json given() const;

 private:
  CLI::App* app_;
  std::set<std::string> only_;
  bool has_flag(const std::string& key) const { return only_.empty() || only_.count(key) > 0; }
  // Text of each valued flag, by option key; booleans are counted, not stored.
  std::map<std::string, std::string> text_;
};

}  // namespace tabby::cli
