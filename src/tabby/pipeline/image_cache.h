// The first pass over a dataset: every file decoded, resized to the model's
// input size and kept as one uint8 tensor (N,H,W,3), by a pool of worker
// threads. Later epochs only gather rows from it. The tensor is in memory, or
// a memory-mapped file of the disk cache (pipeline/cache_policy.h says which,
// pipeline/rows_file.h how) that a later run on the same files reuses without
// decoding. Files that cannot be decoded are skipped, counted and named, never
// fatal, unless nothing is left.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tabby/dataset/dataset.h"
#include "tabby/pipeline/cache_policy.h"
#include "tabby/pipeline/row_source.h"
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
  std::optional<DataCachePolicy> cache;  // nullopt: default_data_cache_policy()

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
  torch::Tensor images;  // uint8 (N,H,W,3), CPU, contiguous; undefined when streamed
  torch::Tensor labels;  // int64 (N)
  std::vector<std::filesystem::path> paths;  // aligned with rows
  std::vector<std::string> class_names;
  std::vector<SkippedFile> skipped;
  double seconds = 0;
  CacheMode storage = CacheMode::memory;  // memory, disk or none (streamed)
  std::filesystem::path cache_file;        // the disk cache's file
  bool reused = false;                     // the disk cache was there already: nothing decoded
  std::shared_ptr<const StreamedImages> stream;  // --cache none: the files, decoded per batch

  int64_t size() const { return stream ? static_cast<int64_t>(stream->paths.size()) : images.defined() ? images.size(0) : 0; }
  // What a BatchLoader reads: the tensor, or the files.
  RowSource rows() const { return stream ? RowSource(stream) : RowSource(images); }
  std::vector<int64_t> class_counts() const;
};

// The processes of a data-parallel job as the disk cache needs them
// (distributed/shard.cpp makes one): the ranks of one machine write one file
// together, each decoding its share, and all map it. Every call is collective.
struct CacheTeam {
  int rank = 0;
  std::vector<int> machine_leader;  // by rank: the lowest rank on that rank's machine
  int local_index = 0, local_count = 1;  // this rank among its machine's ranks
  std::function<std::vector<std::string>(const std::string&)> allgather;
  std::function<void()> barrier;
};

// Decodes the whole dataset (or maps its disk cache). Throws tabby::Error when
// no image could be decoded, or when the cache would not fit in memory.
// With a team (a data-parallel job) the disk cache is used whatever the mode.
ImageCache build_image_cache(const Dataset& dataset, const ImageCacheOptions& options,
                             const CacheTeam* team = nullptr);

// Where the decoded set of `dataset` would live: memory, disk or none.
CacheMode resolved_cache_mode(const Dataset& dataset, const ImageCacheOptions& options, int copies = 1);


}  // namespace tabby
