// The first pass over a dataset: every file decoded, resized to the model's
// input size and kept in memory as one uint8 tensor (N,H,W,3), by a pool of
// worker threads. Later epochs only gather rows from it. Files that cannot be
// decoded are skipped, counted and named, never fatal, unless nothing is left.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tabby/dataset/dataset.h"
#include "tabby/util/threads.h"

namespace tabby {

struct ImageCacheOptions {
  int64_t height = 0;
  int64_t width = 0;
  bool crop_to_aspect = false;  // Keras crop_to_aspect_ratio
  int threads = 0;              // 0: one per core
  std::string what = "images";  // for messages: "training images"
  bool progress = true;
  // A share of a dataset (distributed/shard.h) may hold no decodable file:
  // then an empty cache, and the skipped files left unprinted for the caller.
  bool allow_empty = false;
  bool warn_skipped = true;

  // Images as a model of input height x width sees them.
  static ImageCacheOptions model_input(int64_t height, int64_t width, bool crop_to_aspect, std::string what) {
    ImageCacheOptions o;
    o.height = height;
    o.width = width;
    o.crop_to_aspect = crop_to_aspect;
    o.what = std::move(what);
    return o;
  }
};

struct ImageCache {
  torch::Tensor images;  // uint8 (N,H,W,3), CPU, contiguous
  torch::Tensor labels;  // int64 (N)
  std::vector<std::filesystem::path> paths;  // aligned with rows
  std::vector<std::string> class_names;
  std::vector<SkippedFile> skipped;
  double seconds = 0;

  int64_t size() const { return images.defined() ? images.size(0) : 0; }
  std::vector<int64_t> class_counts() const;
};

// Decodes the whole dataset. Throws tabby::Error when no image could be
// decoded, or when the cache would not fit in memory.
ImageCache build_image_cache(const Dataset& dataset, const ImageCacheOptions& options);


}  // namespace tabby
