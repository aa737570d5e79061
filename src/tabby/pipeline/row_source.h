// The rows a BatchLoader serves: a tensor (decoded images in memory or mapped
// from the disk cache, or a frozen backbone's features), or image files decoded
// anew whenever their rows are asked for (--cache none: nothing is kept, as a
// DataLoader does). Both give the same rows for the same indices, pixel for
// pixel: streaming decodes each file exactly as the cache's first pass did.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace tabby {

// Image files of a dataset that all decoded once (the first pass checked them),
// decoded again on demand on a pool of threads.
struct StreamedImages {
  std::vector<std::filesystem::path> paths;  // one per row
  int64_t height = 0, width = 0;
  bool crop_to_aspect = false;
  int threads = 0;  // 0: one per core

  int64_t row_bytes() const { return height * width * 3; }
  // Rows `rows[0..n)` into out (n x H x W x 3 uint8). tabby::Error naming the
  // file when one no longer decodes (changed or removed since the first pass).
  void decode(const int64_t* rows, int64_t n, uint8_t* out) const;
};

class RowSource {
 public:
  RowSource() = default;
  RowSource(torch::Tensor rows);  // NOLINT: a tensor is a source as it is
  explicit RowSource(std::shared_ptr<const StreamedImages> files);

  bool defined() const { return tensor_.defined() || files_ != nullptr; }
  bool streamed() const { return files_ != nullptr; }
  int64_t size() const;
  // Bytes held in memory (or mapped); 0 for streamed files.
  uint64_t nbytes() const { return tensor_.defined() ? tensor_.nbytes() : 0; }
  // uint8 (N,H,W,3) images, as opposed to features
  bool images() const;
  torch::Device device() const { return tensor_.defined() ? tensor_.device() : torch::Device(torch::kCPU); }
  const torch::Tensor& tensor() const { return tensor_; }

  RowSource narrow(int64_t begin, int64_t count) const;
  // The same rows on `device` (a tensor is copied; files stay files).
  RowSource to(const torch::Device& device) const;
  // Rows `indices` (int64, CPU), stacked: (B, ...) on the source's device.
  torch::Tensor gather(const torch::Tensor& indices) const;

 private:
  torch::Tensor tensor_;
  std::shared_ptr<const StreamedImages> files_;
  int64_t begin_ = 0, count_ = 0;  // the files' rows this source covers
};

}  // namespace tabby
