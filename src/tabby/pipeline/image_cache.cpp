#include "tabby/pipeline/image_cache.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"

namespace tabby {

std::vector<int64_t> ImageCache::class_counts() const {
  std::vector<int64_t> counts(class_names.size(), 0);
  if (!labels.defined()) return counts;
  auto acc = labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < acc.size(0); ++i) counts[acc[i]]++;
  return counts;
}

namespace {

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

}  // namespace

ImageCache build_image_cache(const Dataset& dataset, const ImageCacheOptions& options) {
  if (options.height <= 0 || options.width <= 0) throw Error("image cache: the image size must be positive");
  const int64_t n = static_cast<int64_t>(dataset.samples.size());
  if (n == 0 && options.allow_empty) {
    ImageCache empty;
    empty.class_names = dataset.class_names;
    empty.images = torch::empty({0, options.height, options.width, 3}, torch::kUInt8);
    empty.labels = torch::empty({0}, torch::kLong);
    return empty;
  }
  if (n == 0) throw Error("no images in " + dataset.source);
  const int64_t row_bytes = options.height * options.width * 3;
  const uint64_t need = static_cast<uint64_t>(n) * static_cast<uint64_t>(row_bytes);
  const uint64_t have = physical_memory_bytes();
  if (have > 0 && need > have / 2) {
    throw Error(fmt::format("caching {} images at {}x{} needs {:.1f} GB, more than half of this machine's {:.1f} GB",
                            n, options.width, options.height, need / 1e9, have / 1e9),
                "use a smaller --image-size or a subset of the data");
  }

  ImageCache cache;
  cache.class_names = dataset.class_names;
  torch::Tensor images = torch::empty({n, options.height, options.width, 3}, torch::kUInt8);
  uint8_t* base = images.data_ptr<uint8_t>();
  std::vector<char> ok(static_cast<size_t>(n), 0);
  std::vector<std::string> reasons(static_cast<size_t>(n));

  const int threads = std::max(1, std::min<int>(options.threads > 0 ? options.threads : default_thread_count(),
                                                static_cast<int>(n)));
  std::atomic<int64_t> next{0}, done{0};
  auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n) break;
      try {
        load_image_resized(dataset.samples[i].path, static_cast<int>(options.width), static_cast<int>(options.height),
                           options.crop_to_aspect, base + i * row_bytes);
        ok[i] = 1;
      } catch (const Error& e) {
        reasons[i] = e.what();
      } catch (const std::exception& e) {
        reasons[i] = e.what();
      }
      done.fetch_add(1);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  // Show progress only when decoding takes a while.
  std::unique_ptr<ProgressLine> progress;
  while (done.load() < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.progress && !progress && elapsed > 1.0) {
      progress = std::make_unique<ProgressLine>("decoding " + options.what, n, "image");
    }
    if (progress) progress->update(done.load());
  }
  for (auto& t : pool) t.join();
  if (progress) progress->update(n);

  // Compact the decoded rows to the front, in dataset order.
  std::vector<int64_t> labels;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!ok[i]) {
      cache.skipped.push_back({dataset.samples[i].path, reasons[i]});
      continue;
    }
    if (kept != i) std::memmove(base + kept * row_bytes, base + i * row_bytes, static_cast<size_t>(row_bytes));
    labels.push_back(dataset.samples[i].label);
    cache.paths.push_back(dataset.samples[i].path);
    ++kept;
  }
  cache.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) progress->finish(fmt::format("{:.0f} images/s", n / std::max(cache.seconds, 1e-9)));
  if (kept == 0 && options.allow_empty) {
    cache.images = torch::empty({0, options.height, options.width, 3}, torch::kUInt8);
    cache.labels = torch::empty({0}, torch::kLong);
    return cache;
  }
  if (kept == 0) {
    throw Error("none of the " + std::to_string(n) + " files in " + dataset.source + " could be decoded (" +
                    describe_skipped(cache.skipped, 2) + ")",
                "check that the folder holds JPEG, PNG, BMP or GIF images");
  }
  cache.images = kept == n ? images : images.narrow(0, 0, kept).clone();
  cache.labels = torch::tensor(labels, torch::kLong);
  if (!cache.skipped.empty() && options.warn_skipped) log::warn(describe_skipped(cache.skipped));
  return cache;
}

}  // namespace tabby
