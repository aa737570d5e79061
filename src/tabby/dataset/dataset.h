// A dataset as tabby names it: an ordered list of (file, label) samples and the
// class names the labels index. Nothing here reads pixels; this is the answer to
// "which files, with which labels, in which order" that every later stage
// (decode, cache, batches, training, evaluation) starts from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tabby {

struct Sample {
  std::filesystem::path path;  // as found (folder scans) or resolved (CSV rows); bytes, not text
  int label = 0;               // index into Dataset::class_names
};

struct Dataset {
  std::vector<std::string> class_names;  // index = label
  std::vector<Sample> samples;           // in the order documented by whoever made it
  std::string source;                    // the folder/CSV/spec it came from, for messages

  // Samples per class; size() == class_names.size() (zeros included).
  std::vector<int64_t> class_counts() const;
  size_t size() const { return samples.size(); }
  bool empty() const { return samples.empty(); }
};

// A file that could not be read, and why ("truncated JPEG data").
struct SkippedFile {
  std::filesystem::path path;
  std::string reason;
};

// "3 files could not be decoded and were skipped: truncated JPEG data; ...".
std::string describe_skipped(const std::vector<SkippedFile>& skipped, size_t max_named = 3);

// The samples at `indices`, in that order, with the same class names. An index
// out of range throws tabby::Error.
Dataset subset(const Dataset& dataset, const std::vector<size_t>& indices);

// The dataset in a seeded random order (Keras `shuffle=True, seed=...`). The
// permutation is tabby::seeded_permutation (dataset/shuffle.h) of
// derive_seed(seed, {SeedPurpose::shuffle_files}): the same on every platform.
Dataset shuffled(const Dataset& dataset, uint64_t seed);

}  // namespace tabby
