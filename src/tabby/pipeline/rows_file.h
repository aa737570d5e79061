// A dataset's decoded, resized images on disk: the `disk` cache mode
// (pipeline/cache_policy.h). One file per key, under the cache folder:
//
//   <key>.rows       finished: a 4 KiB header, then the uint8 rows (N,H,W,3) of every
//                    file that decoded, in dataset order, then JSON metadata (source,
//                    size, the files that were skipped and why)
//   <key>.<host>.<pid>.partial
//                    being written; never read as a cache. A writer that is killed
//                    leaves one behind, which the next writer on that host (or
//                    `tabby cache prune`) removes once its process is gone
//
// The key is a SHA-256 of everything that changes the pixels: each file's path,
// size and modification time, in dataset order, the image size, the crop mode and
// the decoders' versions. A changed, added or removed file makes another key (and
// so a new file); the old one stays until `tabby cache` removes it.
//
// A finished file is only ever renamed into place after its rows, metadata and
// header are on disk (fdatasync), so a cache that exists is whole. Readers map it
// read-only and shared: the pages are the kernel's page cache, one copy for every
// process of the machine, and not the process's private memory.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tabby/dataset/dataset.h"

namespace tabby {

namespace fs = std::filesystem;

// Bytes before the first row.
inline constexpr int64_t kRowsHeaderBytes = 4096;

// The key of `dataset`'s pixels at height x width (stats every file).
// tabby::Error naming the file when one cannot be stat'ed.
std::string pixels_key(const Dataset& dataset, int64_t height, int64_t width, bool crop_to_aspect);

// A finished file, mapped.
struct MappedRows {
  torch::Tensor images;            // uint8 (rows,H,W,3), read-only memory: never write into it
  std::vector<int64_t> skipped;    // dataset indices of the files that did not decode
  std::vector<std::string> reasons;  // aligned with `skipped`
  fs::path path;
  uint64_t file_bytes = 0;
};

// The finished file of `key` in `dir` if there is a whole one for a dataset of
// `files` files at height x width, mapped; nullopt when there is none (a file
// that is there but damaged or of another format is reported as `problem`).
std::optional<MappedRows> open_rows(const fs::path& dir, const std::string& key, int64_t files, int64_t height,
                                    int64_t width, std::string* problem = nullptr);

// Writes one key's file: created beside its final name, filled row by row (by
// several threads or processes at once: each its own rows), then finished.
class RowsWriter {
 public:
  // A new partial file for `files` rows (the largest it can need).
  static RowsWriter create(const fs::path& dir, const std::string& key, int64_t files, int64_t height, int64_t width);
  // Another process's partial file (a rank on the same machine writing its share).
  static RowsWriter attach(const fs::path& partial, int64_t files, int64_t height, int64_t width);
  ~RowsWriter();
  RowsWriter(RowsWriter&& other) noexcept;
  RowsWriter& operator=(RowsWriter&&) = delete;
  RowsWriter(const RowsWriter&) = delete;

  const fs::path& partial_path() const { return partial_; }
  // Where the decoded image of dataset file `index` goes (height*width*3 bytes).
  uint8_t* row(int64_t index) const;
  // Closes the rows of the files in `skipped` up, writes the metadata and the
  // header, syncs and renames the file to its final name, which it returns.
  fs::path finish(const std::string& key, const std::vector<int64_t>& skipped, const std::vector<std::string>& reasons,
                  const std::string& source, bool crop_to_aspect);
  // Removes the partial file (a build that failed).
  void abandon();

 private:
  RowsWriter() = default;
  void unmap();

  fs::path dir_, partial_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t mapped_ = 0;
  int64_t files_ = 0, height_ = 0, width_ = 0;
};

// An exclusive lock on building `key` in `dir`, released when destroyed:
// two runs that need the same cache at once build it once.
class RowsBuildLock {
 public:
  RowsBuildLock(const fs::path& dir, const std::string& key);
  ~RowsBuildLock();
  RowsBuildLock(const RowsBuildLock&) = delete;
  RowsBuildLock& operator=(const RowsBuildLock&) = delete;

 private:
  int fd_ = -1;
};

// What `tabby cache list` shows of each file in a cache folder.
struct RowsFileInfo {
  fs::path path;
  std::string key;
  bool finished = false;  // false: a .partial file
  bool writer_alive = false;  // a .partial file whose writer still runs on this host
  uint64_t bytes = 0;
  int64_t rows = 0, files = 0, height = 0, width = 0;
  std::string source;
  std::string problem;  // a finished file that is damaged
  fs::file_time_type last_used;
};
std::vector<RowsFileInfo> list_rows_files(const fs::path& dir);

// A zero-filled tensor backed by a file in `dir` that is deleted at once (it
// lives while the tensor does): large working data, such as a frozen backbone's
// features for a big dataset, kept in the page cache instead of private memory.
torch::Tensor file_backed_tensor(const fs::path& dir, const std::vector<int64_t>& sizes, torch::ScalarType dtype);

// The same in a named file several processes map (the ranks of one machine):
// `create` makes it (zero-filled, sized for `sizes`), otherwise it is opened.
// Whoever made it removes the name once every process has mapped it.
torch::Tensor shared_file_tensor(const fs::path& path, const std::vector<int64_t>& sizes, torch::ScalarType dtype,
                                 bool create);

// "<key>.<host>.<pid>.partial": the name this process writes `key` under.
std::string partial_name(const std::string& key);

// Removes the .partial files whose writer is gone (on this host); returns how many.
int remove_abandoned_partials(const fs::path& dir);

}  // namespace tabby
