// Helpers shared by all tests: scratch folders, the shared data location,
// running the tabby binary, and writing small image files of every format.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tabby::testing {

namespace fs = std::filesystem;

// A fresh, empty folder for one test: $TABBY_TEST_TMP/<name> (or the system
// temp folder), wiped first so reruns start clean.
fs::path scratch_dir(const std::string& name);

// The shared data root (datasets/, weights/), or nullopt when it is absent.
std::optional<fs::path> shared_dir();

// Skips the current test with a message when the shared data is absent.
#define TABBY_REQUIRE_SHARED(var)                                        \
  auto var##_opt = ::tabby::testing::shared_dir();                       \
  if (!var##_opt) GTEST_SKIP() << "shared data folder not found (TABBY_SHARED)"; \
  const ::std::filesystem::path var = *var##_opt

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command line, capturing stdout and stderr separately.
CommandResult run_command(const std::string& command_line);

// Runs the built tabby binary ($TABBY_BIN) with the given arguments (each is
// shell-quoted here), with `environment` added to this process's.
CommandResult run_tabby(const std::vector<std::string>& args,
                        const std::vector<std::pair<std::string, std::string>>& environment = {});

// A command's exit status and output, for the message of a failed expectation.
std::string describe(const CommandResult& result);

// Quotes one argument for /bin/sh.
std::string shell_quote(const std::string& arg);

// Writes bytes to a file, creating parent folders.
void write_bytes(const fs::path& path, const std::string& bytes);

// A one-byte file, for tests that only list files.
void touch(const fs::path& path);

// The lines of `text`, without their line ends.
std::vector<std::string> lines_of(const std::string& text);

// A JSON file, parsed.
nlohmann::json read_json(const fs::path& file);

// Expects two safetensors files to hold the same tensors: names, shapes and bytes.
void expect_same_tensors(const fs::path& a, const fs::path& b);

// An RGB test pattern: a smooth gradient with a per-image colour shift so
// images differ; `seed` varies it.
std::vector<uint8_t> test_pattern(int width, int height, int seed = 0);

}  // namespace tabby::testing
