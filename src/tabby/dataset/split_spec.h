// Split specs in the TensorFlow Datasets style — "train", "train[:40%]",
// "train[40%:50%]", "train[-10%:]", "train[:1000]", "train[:10%]+validation" —
// resolved over a folder that holds named split folders (ROOT/train/<class>/...)
// or, when ROOT itself holds the class folders, the single split "train".
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/dataset/dataset.h"

namespace tabby {

// One slice of one split. Bounds are half-open [from, to); a missing bound is
// the start/end. A negative bound counts from the end (TFDS).
struct SplitSpec {
  std::string split;            // split name: letters, digits, '_' and '-'
  std::optional<double> from;   // percent (may have decimals) or a whole count
  std::optional<double> to;
  bool percent = false;         // both bounds are percentages when true, else counts
  std::string text;             // as written, for messages

  bool whole() const { return !from && !to; }
};

// Parses one slice: NAME, NAME[A:B], NAME[A%:B%] (either bound may be left out).
// UsageError on bad syntax, mixed units (10:50%), a percentage outside
// [-100, 100], or from > to when both count from the same end ("train[60%:40%]").
SplitSpec parse_split_spec(const std::string& text);

// Parses slices joined with '+' ("train[:10%]+validation"); spaces around '+' are ok.
std::vector<SplitSpec> parse_split_union(const std::string& text);

// The index range [begin, end) a slice selects among n ordered samples, as TFDS
// computes it: a percentage p becomes round(p * n / 100) with the rounding of
// Python's round() (to nearest, halves to even — TFDS' default "closest"
// rounding); a negative bound adds n; bounds are then clamped to [0, n].
// begin > end after that is a UsageError.
struct SliceRange {
  size_t begin = 0, end = 0;
};
SliceRange slice_range(const SplitSpec& spec, size_t n);

// The named splits under ROOT, sorted, with their folders. ROOT is a split root
// when no sub-folder directly holds image files and at least one has
// sub-folders of its own (ROOT/train/cats/...): each non-hidden sub-folder is a
// split. Otherwise ROOT itself holds the class folders and its one split is
// "train" (= ROOT). A missing ROOT is a tabby::Error.
struct NamedSplit {
  std::string name;
  std::filesystem::path folder;
};
std::vector<NamedSplit> list_splits(const std::filesystem::path& root);

// Resolves a spec (union allowed) to a Dataset.
// - Each split folder is scanned with scan_folder; class names are the sorted
//   union of class folders over ALL splits of ROOT, so "train" and "validation"
//   resolved separately agree on labels.
// - Slices index a fixed order of the whole split: the scan order permuted by
//   seeded_permutation(n, derive_seed(kSliceOrderSeed, {SeedPurpose::slice_order}))
//   — a shuffle that does not depend on any user seed, like TFDS' fixed record
//   order — so train[:40%] and train[40%:50%] are disjoint in every run and
//   class-balanced in expectation.
// - The samples a slice selects are returned in scan order (class by class);
//   parts of a union are concatenated in the order written (overlaps are kept,
//   as TFDS does).
// - "all" (TFDS' reserved name) is every split of ROOT, whole, unless ROOT has a
//   split folder named "all".
// Errors: bad syntax (UsageError), an unknown split (UsageError listing the
// available ones), a slice that selects nothing, and any scan_folder error.
Dataset resolve_split(const std::filesystem::path& root, const std::string& spec_text);

// The fixed seed behind slice order. Part of the reproducibility contract:
// changing it changes what every slice holds.
inline constexpr uint64_t kSliceOrderSeed = 0x7461'6262'7953'4c43ULL;

}  // namespace tabby
