#include "tabby/pipeline/row_source.h"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "tabby/image/resize.h"
#include "tabby/util/error.h"
#include "tabby/util/threads.h"

namespace tabby {

void StreamedImages::decode(const int64_t* rows, int64_t n, uint8_t* out) const {
  const int workers = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(threads > 0 ? threads : default_thread_count(), n)));
  std::atomic<int64_t> next{0};
  std::mutex failed_mutex;
  std::string failed;
  auto work = [&] {
    for (int64_t k = next.fetch_add(1); k < n; k = next.fetch_add(1)) {
      const auto& path = paths.at(static_cast<size_t>(rows[k]));
      try {
        load_image_resized(path, static_cast<int>(width), static_cast<int>(height), crop_to_aspect,
                           out + k * row_bytes());
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(failed_mutex);
        if (failed.empty()) failed = path.string() + ": " + e.what();
      }
    }
  };
  if (workers == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < workers; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (!failed.empty()) {
    throw Error("an image that decoded in the first pass no longer does: " + failed,
                "the data changed while it was in use; restore it, or train again (resuming picks up where it was)");
  }
}

RowSource::RowSource(torch::Tensor rows) : tensor_(std::move(rows)) {}

RowSource::RowSource(std::shared_ptr<const StreamedImages> files)
    : files_(std::move(files)), begin_(0), count_(static_cast<int64_t>(files_->paths.size())) {}

int64_t RowSource::size() const {
  if (files_) return count_;
  return tensor_.defined() ? tensor_.size(0) : 0;
}

bool RowSource::images() const {
  if (files_) return true;
  return tensor_.defined() && tensor_.scalar_type() == torch::kUInt8 && tensor_.dim() == 4 && tensor_.size(3) == 3;
}

RowSource RowSource::narrow(int64_t begin, int64_t count) const {
  if (!files_) return RowSource(tensor_.narrow(0, begin, count));
  if (begin < 0 || count < 0 || begin + count > count_) throw Error("row source: rows out of range");
  RowSource part = *this;
  part.begin_ = begin_ + begin;
  part.count_ = count;
  return part;
}

RowSource RowSource::to(const torch::Device& device) const {
  if (files_) return *this;
  return RowSource(tensor_.to(device));
}

torch::Tensor RowSource::gather(const torch::Tensor& indices) const {
  if (!files_) return tensor_.index_select(0, indices.to(tensor_.device()));
  const int64_t n = indices.size(0);
  auto idx = indices.to(torch::kLong).contiguous();
  std::vector<int64_t> rows(static_cast<size_t>(n));
  const int64_t* in = idx.data_ptr<int64_t>();
  for (int64_t k = 0; k < n; ++k) {
    if (in[k] < 0 || in[k] >= count_) throw Error("row source: row " + std::to_string(in[k]) + " out of range");
    rows[static_cast<size_t>(k)] = begin_ + in[k];
  }
  torch::Tensor out = torch::empty({n, files_->height, files_->width, 3}, torch::kUInt8);
  files_->decode(rows.data(), n, out.data_ptr<uint8_t>());
  return out;
}

}  // namespace tabby
