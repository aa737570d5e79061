// File helpers: whole-file reads and crash-safe writes.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace tabby {

namespace fs = std::filesystem;

// Reads a whole file; throws tabby::Error naming the path when it cannot.
std::string read_file(const fs::path& path);

// Writes `data` so that `path` holds either its old content or all of the new
// content, never a mix: a temporary file beside it is written, flushed to disk
// and renamed over `path`. On failure (full disk, no permission) the old file is
// untouched and a tabby::Error says why.
void write_file_atomic(const fs::path& path, std::string_view data);

// Creates `dir` (and parents) or throws a tabby::Error explaining why it cannot.
void ensure_directory(const fs::path& dir);

// Lower-cased extension including the dot (".jpg"), "" when there is none.
std::string lower_extension(const fs::path& path);

}  // namespace tabby
