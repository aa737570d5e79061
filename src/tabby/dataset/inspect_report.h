// What `tabby inspect` finds in a dataset, without LibTorch: images per class
// and split, the majority-class baseline, the most common image sizes, file
// formats (by content) and every unreadable file with its reason.
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

#include "tabby/dataset/dataset.h"
#include "tabby/image/decode.h"
#include "tabby/metrics/classification.h"

namespace tabby {

// A named part of the data: "train", "validation", "test", or a split folder's name.
struct DatasetPart {
  std::string name;
  Dataset dataset;
};

struct InspectSplit {
  std::string name;
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

// One file looked at.
struct FileProbe {
  bool ok = false;
  ImageFormat format = ImageFormat::Unknown;
  int width = 0, height = 0;
  std::string reason;  // why it is unreadable
};

// Probes (or, with `verify`, fully decodes) every file on `threads` threads
// (0: all cores), with a progress line when it takes more than a second.
std::vector<FileProbe> probe_files(const std::vector<std::filesystem::path>& files, bool verify, int threads);

struct InspectOptions {
  bool verify = false;
  int threads = 0;
  int top_sizes = 10;  // image sizes listed before "other"
};

// The report of `parts` (at least one; the first's class names name them all).
// A file in several parts is probed once. `readable` gets, for each sample of
// the first part, whether it could be read (for sample grids).
InspectReport inspect_parts(const std::string& data, const std::vector<DatasetPart>& parts,
                            const InspectOptions& options, std::vector<char>* readable = nullptr);

}  // namespace tabby
