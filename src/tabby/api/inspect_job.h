// `tabby inspect DATA`: look at a dataset before training on it. Images per
// class and split, the majority-class baseline, the most common image sizes,
// file formats, and every unreadable file with its reason; optionally a grid
// of random samples per class and a preview of augmented versions of images.
//
// Headers are probed (a few KB per file, on all cores) unless `verify` asks
// for a full decode, which also finds files whose header is fine but whose
// pixel data is truncated or corrupt.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tabby/api/data_source.h"
#include "tabby/config/model_spec.h"
#include "tabby/metrics/classification.h"
#include "tabby/pipeline/image_cache.h"

namespace tabby {

struct InspectJob {
  // DATA and the same split settings as `tabby train` (--split, --val,
  // --validation-split, --test-fraction, ...). Without any, a folder of split
  // folders (ROOT/train/<class>, ROOT/validation/<class>) is shown split by split.
  DataArgs data;
  bool verify = false;  // decode every file fully
  int threads = 0;      // 0: all cores
  int top_sizes = 10;   // image sizes listed before "other"

  // Sample grid: `samples` random images per class (one row per class,
  // labelled) from the first split, written to `grid` (.png or .svg).
  std::filesystem::path grid;
  int samples = 3;
  // Augmentation preview written to `preview` (.png or .svg):
  // "flip,rotation=0.1,zoom=0.2" (see parse_augment_spec) or the
  // augmentation layers of `model`; `preview_images` random images,
  // each shown as the original and `preview_versions` augmented versions,
  // resized to image_height x image_width first (what the model would see).
  std::string augment;
  std::string model;
  std::filesystem::path preview;
  int preview_images = 2;
  int preview_versions = 5;
  int64_t image_height = 0, image_width = 0;  // 0: the model's size, else 180
  // Bar charts of the class counts and image sizes (class_counts.png, image_sizes.png).
  std::filesystem::path charts_dir;
  uint64_t seed = 1337;  // which samples the grid and preview show
};

struct InspectSplit {
  std::string name;    // "train", "validation", "test", or a split folder's name
  std::string source;  // where it came from
  std::vector<int64_t> files;   // files per class (as listed)
  std::vector<int64_t> images;  // readable images per class
  metrics::MajorityBaseline baseline;  // over readable images
  int64_t total_files() const;
  int64_t total_images() const;
};

struct SizeCount {
  int width = 0, height = 0;
  int64_t count = 0;
};

struct InspectReport {
  std::string data;  // as named
  std::vector<std::string> class_names;
  std::vector<InspectSplit> splits;
  std::vector<int64_t> images;  // readable images per class over all splits
  metrics::MajorityBaseline baseline;  // over all splits
  std::vector<SizeCount> top_sizes;    // most common first
  int64_t other_sizes = 0;             // images of any other size
  int64_t distinct_sizes = 0;
  int min_width = 0, max_width = 0, min_height = 0, max_height = 0;
  std::map<std::string, int64_t> formats;     // "JPEG" -> count (by content)
  int64_t extension_mismatches = 0;           // e.g. a PNG named .jpg
  std::vector<SkippedFile> unreadable;        // sorted by path
  bool verified = false;
  double seconds = 0;
  std::vector<std::filesystem::path> written;  // grid, preview, charts

  nlohmann::json to_json() const;
  // The text for people; `max_unreadable` files are named, then a count.
  std::string to_text(size_t max_unreadable = 20) const;
};

InspectReport run_inspect_job(const InspectJob& job);

// The augmentation layers a spec names, in order, as model layers:
//   flip | flip=horizontal|vertical|both   RandomFlip (flip alone: horizontal)
//   rotation=F                             RandomRotation(F), F of a full turn
//   zoom=F                                 RandomZoom(F)
//   translation=F                          RandomTranslation(F, F)
//   contrast=F                             RandomContrast(F)
// separated by commas. UsageError for anything else.
std::vector<LayerSpec> parse_augment_spec(const std::string& spec);

}  // namespace tabby
