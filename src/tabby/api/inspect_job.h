// `tabby inspect DATA`: look at a dataset before training on it. The
// statistics (dataset/inspect_report.h: images per class and split, the
// majority-class baseline, image sizes, formats, unreadable files), and
// optionally a grid of random samples per class, a preview of augmented
// versions of images and bar charts of the counts.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tabby/api/data_source.h"
#include "tabby/config/augment_spec.h"
#include "tabby/config/model_spec.h"
#include "tabby/dataset/inspect_report.h"

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

InspectReport run_inspect_job(const InspectJob& job);

}  // namespace tabby
