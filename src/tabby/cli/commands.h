// The subcommands of the `tabby` binary. Each add_* function declares its
// flags on a CLI11 sub-app and returns the action to run after parsing; the
// actions only translate flags into library calls (tabby/api) and print.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace tabby::cli {

using Action = std::function<int()>;

struct Command {
  CLI::App* app;
  Action run;
};

Command add_train(CLI::App& root);
Command add_evaluate(CLI::App& root);
Command add_predict(CLI::App& root);
Command add_summary(CLI::App& root);
Command add_demo(CLI::App& root);
Command add_inspect(CLI::App& root);
Command add_report(CLI::App& root);
Command add_run(CLI::App& root);
Command add_serve(CLI::App& root);
Command add_export(CLI::App& root);
Command add_cache(CLI::App& root);
Command add_lr_find(CLI::App& root);

// --cache auto|memory|disk and --cache-dir DIR (in `group`), for the commands that
// decode datasets; given, they set the process's default_data_cache_policy().
void add_data_cache_flags(CLI::App* app, const std::string& group = "");

// "150" -> {150,150}; "150x120" -> {150,120} (height x width).
std::pair<int64_t, int64_t> parse_image_size(const std::string& text);

// The command line this process was started with (kept by main for
// `train --nproc-per-node`, which starts the same command once per rank).
void set_program_arguments(int argc, char** argv);
const std::vector<std::string>& program_arguments();

// Prints JSON to stdout (pretty).
void print_json(const std::string& json_text);

}  // namespace tabby::cli
