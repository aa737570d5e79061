// Small training data the integration tests make themselves, and starting the
// tabby binary in the background (for tests that signal or kill it).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace tabby::testing {

// Two classes a tiny CNN separates in a few epochs: the bright half of the
// image is on the left for "left" and on the right for "right", over noise.
// PNG files root/{left,right}/img_<i>.png, size x size pixels.
void write_two_class_folder(const std::filesystem::path& root, int per_class, int size, int seed);

// `count` 16x16 PNG files dir/img_<i>.png, reddish (`red`) or bluish over noise:
// two such folders make classes a tiny CNN separates.
void write_tinted_images(const std::filesystem::path& dir, int count, bool red, int seed);

// Starts $TABBY_BIN with `args` in the background, appending its stdout and
// stderr to `log`; returns its pid.
pid_t spawn_tabby(const std::vector<std::string>& args, const std::filesystem::path& log);

}  // namespace tabby::testing
