// Datasets that tabby can fetch for a user who has none: a zip archive at a
// URL, downloaded once into the cache, checked, and unpacked there.
//
// Google publishes no checksum for cats_and_dogs_filtered.zip, so the pinned
// facts are its exact size and layout, and every entry's CRC-32 is checked
// while unpacking; the SHA-256 of the first good download is recorded and
// checked on later use. A known SHA-256 can be pinned in the spec.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tabby {

struct RemoteDataset {
  std::string name;            // folder name inside the archive and in the cache
  std::string url;
  std::string sha256;          // full hex digest, or empty when none is published
  uint64_t size_bytes = 0;     // expected archive size, 0: unknown
  std::vector<std::string> required_dirs;  // relative to the unpacked folder
};

// Google's cats-vs-dogs subset used by the Keras transfer-learning tutorials.
const RemoteDataset& cats_and_dogs_filtered();

// Places where an unpacked copy of `name` may already be: $TABBY_DATA_DIR/name,
// <shared root>/datasets/name, <cache>/datasets/name.
std::vector<std::filesystem::path> dataset_search_dirs(const std::string& name);

// An existing copy with the required folders, else a download into the cache
// (unless $TABBY_OFFLINE=1). $TABBY_DATASETS_BASE_URL replaces the host part
// of the URL (a mirror). Logs where the data came from.
std::filesystem::path find_or_fetch_dataset(const RemoteDataset& spec);

// Unpacks a zip file into `dest_parent` (entries are checked for CRC errors
// and for paths escaping the folder). Returns the number of files written.
size_t extract_zip(const std::filesystem::path& zip_file, const std::filesystem::path& dest_parent);

}  // namespace tabby
