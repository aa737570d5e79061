// Where tabby looks for things it does not ship: shared datasets and weights,
// and the per-user cache for downloads. Every location is a setting (an
// environment variable) with documented fallbacks, never a hard-coded path.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tabby {

namespace fs = std::filesystem;

// Candidate roots of a "shared" folder holding datasets/ and weights/, in the
// order searched: $TABBY_SHARED, ./shared, ../shared, and ../shared beside the
// source tree tabby was built from. Only existing folders are returned.
std::vector<fs::path> shared_roots();

// The per-user cache: $TABBY_CACHE_DIR, else $XDG_CACHE_HOME/tabby, else
// ~/.cache/tabby. Not created here.
fs::path cache_dir();

// Value of an environment variable, or nullopt when unset or empty.
std::optional<std::string> env_setting(const char* name);

}  // namespace tabby
