#include "tabby/pipeline/image_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/pipeline/rows_file.h"
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

int64_t row_bytes_of(const ImageCacheOptions& o) { return o.height * o.width * 3; }

// Which of the files [begin, end) decoded, and why the others did not.
struct DecodedRange {
  std::vector<char> ok;
  std::vector<std::string> reasons;
  double seconds = 0;
};

// Decodes files [begin, end) of `dataset` on a pool of threads, file i into row(i).
DecodedRange decode_rows(const Dataset& dataset, int64_t begin, int64_t end,
                         const std::function<uint8_t*(int64_t)>& row, const ImageCacheOptions& options) {
  const int64_t n = end - begin;
  DecodedRange r;
  r.ok.assign(static_cast<size_t>(n), 0);
  r.reasons.resize(static_cast<size_t>(n));
  if (n <= 0) return r;
  const int threads = std::max(1, std::min<int>(options.threads > 0 ? options.threads : default_thread_count(),
                                                static_cast<int>(n)));
  std::atomic<int64_t> next{0}, done{0};
  auto start = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (;;) {
      const int64_t k = next.fetch_add(1);
      if (k >= n) break;
      try {
        load_image_resized(dataset.samples[begin + k].path, static_cast<int>(options.width),
                           static_cast<int>(options.height), options.crop_to_aspect, row(begin + k));
        r.ok[k] = 1;
      } catch (const std::exception& e) {
        r.reasons[k] = e.what();
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
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (progress) {
    progress->update(n);
    progress->finish(fmt::format("{:.0f} images/s", n / std::max(r.seconds, 1e-9)));
  }
  return r;
}

ImageCache empty_cache(const Dataset& dataset, const ImageCacheOptions& options) {
  ImageCache empty;
  empty.class_names = dataset.class_names;
  empty.images = torch::empty({0, options.height, options.width, 3}, torch::kUInt8);
  empty.labels = torch::empty({0}, torch::kLong);
  return empty;
}

// Labels and paths of the rows: every file but the skipped ones, in dataset order.
void fill_rows_metadata(ImageCache& cache, const Dataset& dataset, const std::vector<int64_t>& skipped,
                        const std::vector<std::string>& reasons) {
  std::vector<int64_t> labels;
  labels.reserve(dataset.size() - skipped.size());
  size_t s = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(dataset.size()); ++i) {
    if (s < skipped.size() && skipped[s] == i) {
      cache.skipped.push_back({dataset.samples[i].path, reasons[s]});
      ++s;
      continue;
    }
    labels.push_back(dataset.samples[i].label);
    cache.paths.push_back(dataset.samples[i].path);
  }
  cache.labels = torch::tensor(labels, torch::kLong);
}

void nothing_decoded(const ImageCache& cache, const Dataset& dataset) {
  throw Error("none of the " + std::to_string(dataset.size()) + " files in " + dataset.source + " could be decoded (" +
                  describe_skipped(cache.skipped, 2) + ")",
              "check that the folder holds JPEG, PNG, BMP or GIF images");
}

ImageCache build_in_memory(const Dataset& dataset, const ImageCacheOptions& options) {
  const int64_t n = static_cast<int64_t>(dataset.size());
  const int64_t row_bytes = row_bytes_of(options);
  const uint64_t need = static_cast<uint64_t>(n) * static_cast<uint64_t>(row_bytes);
  const uint64_t have = physical_memory_bytes();
  if (have > 0 && need > have / 2) {
    throw Error(fmt::format("caching {} images at {}x{} needs {:.1f} GB, more than half of this machine's {:.1f} GB",
                            n, options.width, options.height, need / 1e9, have / 1e9),
                "use --cache disk (or auto) to keep them in a memory-mapped file on disk, a smaller --image-size, "
                "or a subset of the data");
  }
  torch::Tensor images = torch::empty({n, options.height, options.width, 3}, torch::kUInt8);
  uint8_t* base = images.data_ptr<uint8_t>();
  DecodedRange d = decode_rows(dataset, 0, n, [&](int64_t i) { return base + i * row_bytes; }, options);

  // Compact the decoded rows to the front, in dataset order.
  std::vector<int64_t> skipped;
  std::vector<std::string> reasons;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!d.ok[i]) {
      skipped.push_back(i);
      reasons.push_back(d.reasons[i]);
      continue;
    }
    if (kept != i) std::memmove(base + kept * row_bytes, base + i * row_bytes, static_cast<size_t>(row_bytes));
    ++kept;
  }
  ImageCache cache;
  cache.class_names = dataset.class_names;
  cache.seconds = d.seconds;
  fill_rows_metadata(cache, dataset, skipped, reasons);
  if (kept == 0 && options.allow_empty) return empty_cache(dataset, options);
  if (kept == 0) nothing_decoded(cache, dataset);
  cache.images = kept == n ? images : images.narrow(0, 0, kept).clone();
  return cache;
}

// The files of `d` (starting at dataset index `begin`) that did not decode, and why.
std::vector<std::pair<int64_t, std::string>> failures_of(const DecodedRange& d, int64_t begin) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (size_t k = 0; k < d.ok.size(); ++k) {
    if (!d.ok[k]) out.emplace_back(begin + static_cast<int64_t>(k), d.reasons[k]);
  }
  return out;
}

// The same as JSON, [[index, reason], ...], for the other ranks.
std::string failures_json(const DecodedRange& d, int64_t begin) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& [i, why] : failures_of(d, begin)) j.push_back({i, why});
  return j.dump();
}

void add_failures(const std::string& json, std::vector<std::pair<int64_t, std::string>>& into) {
  for (const auto& f : nlohmann::json::parse(json)) into.emplace_back(f.at(0).get<int64_t>(), f.at(1).get<std::string>());
}

// The files that did not decode, in dataset order, and why.
struct Failures {
  std::vector<int64_t> indices;
  std::vector<std::string> reasons;
};

Failures sorted_failures(std::vector<std::pair<int64_t, std::string>> failures) {
  std::sort(failures.begin(), failures.end());
  Failures f;
  for (auto& [i, why] : failures) {
    f.indices.push_back(i);
    f.reasons.push_back(std::move(why));
  }
  return f;
}

// Decodes the dataset into the file `writer` holds: this process's share of the
// files, then (leader) the file finished. Returns how long decoding took.
// `writer` is null on a machine that does not build (its cache was there).
double write_rows(const Dataset& dataset, const ImageCacheOptions& options, const std::string& key, RowsWriter* writer,
                  const CacheTeam* team, bool building, bool leader) {
  const int64_t n = static_cast<int64_t>(dataset.size());
  DecodedRange d;
  int64_t begin = 0, end = 0;
  if (building) {
    const int64_t index = team ? team->local_index : 0, count = team ? team->local_count : 1;
    begin = n * index / count;
    end = n * (index + 1) / count;
    d = decode_rows(dataset, begin, end, [&](int64_t i) { return writer->row(i); }, options);
  }
  std::vector<std::pair<int64_t, std::string>> failures;
  if (team) {
    const std::vector<std::string> all = team->allgather(building ? failures_json(d, begin) : "[]");
    for (size_t r = 0; r < all.size(); ++r) {
      if (team->machine_leader[r] == team->machine_leader[team->rank]) add_failures(all[r], failures);
    }
  } else {
    failures = failures_of(d, begin);
  }
  if (building && leader) {
    const Failures f = sorted_failures(std::move(failures));
    if (static_cast<int64_t>(f.indices.size()) == n) {
      writer->abandon();  // nothing to keep; the caller reports it
    } else {
      writer->finish(key, f.indices, f.reasons, dataset.source, options.crop_to_aspect);
    }
  }
  return d.seconds;
}

ImageCache cache_from_rows(const Dataset& dataset, MappedRows&& rows, double seconds, bool reused) {
  ImageCache cache;
  cache.class_names = dataset.class_names;
  cache.images = std::move(rows.images);
  fill_rows_metadata(cache, dataset, rows.skipped, rows.reasons);
  cache.seconds = seconds;
  cache.storage = CacheMode::disk;
  cache.cache_file = rows.path;
  cache.reused = reused;
  log::infof("{} disk cache {} ({:.2f} GB, {} images at {}x{}){}", reused ? "reusing the" : "wrote the",
             rows.path.string(), rows.file_bytes / 1e9, cache.size(), cache.images.size(2), cache.images.size(1),
             reused ? ": nothing to decode" : "");
  return cache;
}

ImageCache build_on_disk(const Dataset& dataset, const ImageCacheOptions& options, const DataCachePolicy& policy,
                         const CacheTeam* team) {
  const int64_t n = static_cast<int64_t>(dataset.size());
  const std::filesystem::path dir = policy.folder();
  const std::string key = pixels_key(dataset, options.height, options.width, options.crop_to_aspect);
  std::string problem;
  auto found = open_rows(dir, key, n, options.height, options.width, &problem);
  const bool leader = !team || team->machine_leader[team->rank] == team->rank;
  bool building = !found.has_value();
  if (team) {
    // The machine's leader speaks for it: its ranks see the same folder.
    const auto have = team->allgather(found ? "1" : "0");
    building = have[team->machine_leader[team->rank]] == "0";
    const bool anyone_builds = std::any_of(have.begin(), have.end(), [](const std::string& h) { return h == "0"; });
    if (!anyone_builds) {
      if (!found) found = open_rows(dir, key, n, options.height, options.width, &problem);
      if (!found) throw Error("the disk cache " + key + " in " + dir.string() + " vanished while the ranks opened it");
      return cache_from_rows(dataset, std::move(*found), 0, true);
    }
  } else if (found) {
    return cache_from_rows(dataset, std::move(*found), 0, true);
  }
  found.reset();
  if (!problem.empty() && leader) log::warnf("the disk cache {}.rows in {} is not usable ({}); writing it again", key, dir.string(), problem);

  std::optional<RowsBuildLock> lock;
  std::optional<RowsWriter> writer;
  std::string partial;
  if (building && leader) {
    lock.emplace(dir, key);
    remove_abandoned_partials(dir);
    if (!team) {
      // Another run may have written it while this one waited for the lock.
      if (auto now = open_rows(dir, key, n, options.height, options.width)) {
        return cache_from_rows(dataset, std::move(*now), 0, true);
      }
    }
    writer.emplace(RowsWriter::create(dir, key, n, options.height, options.width));
    partial = writer->partial_path().string();
    log::infof("writing the disk cache of {} ({} files at {}x{}, up to {:.2f} GB) to {}", options.what, n,
               options.width, options.height, static_cast<double>(n) * row_bytes_of(options) / 1e9, dir.string());
  }
  if (team) {
    const auto names = team->allgather(partial);
    if (building && !leader) {
      writer.emplace(RowsWriter::attach(names[team->machine_leader[team->rank]], n, options.height, options.width));
    }
  }
  double seconds = 0;
  try {
    seconds = write_rows(dataset, options, key, writer ? &*writer : nullptr, team, building, leader);
  } catch (...) {
    if (writer && leader) writer->abandon();
    throw;
  }
  writer.reset();
  lock.reset();
  if (team) team->barrier();
  auto rows = open_rows(dir, key, n, options.height, options.width, &problem);
  if (!rows) {
    // Every file failed (nothing was kept), or the file vanished under us.
    if (!problem.empty()) throw Error("the disk cache " + key + " in " + dir.string() + " is not usable: " + problem);
    ImageCache none;
    none.class_names = dataset.class_names;
    for (const Sample& s : dataset.samples) none.skipped.push_back({s.path, "could not be decoded"});
    if (options.allow_empty) return empty_cache(dataset, options);
    nothing_decoded(none, dataset);
  }
  return cache_from_rows(dataset, std::move(*rows), seconds, false);
}

// --cache none: a first pass finds the files that decode (the rows are the same
// as a cache's), then batches decode them again. With a team each rank checks
// its share of the files and all learn every rank's failures.
ImageCache build_streamed(const Dataset& dataset, const ImageCacheOptions& options, const CacheTeam* team) {
  const int64_t n = static_cast<int64_t>(dataset.size());
  const int world = team ? static_cast<int>(team->machine_leader.size()) : 1;
  const int rank = team ? team->rank : 0;
  const int64_t begin = n * rank / world, end = n * (rank + 1) / world;
  const int64_t row_bytes = row_bytes_of(options);
  const int threads = std::max(1, options.threads > 0 ? options.threads : default_thread_count());
  // One scratch row per decoding thread (each thread its own): the first pass keeps nothing.
  auto row = [row_bytes](int64_t) {
    thread_local std::vector<uint8_t> scratch;
    scratch.resize(static_cast<size_t>(row_bytes));
    return scratch.data();
  };
  ImageCacheOptions checking = options;
  checking.threads = threads;
  checking.what = options.what + " (checking, --cache none)";
  const DecodedRange d = decode_rows(dataset, begin, end, row, checking);
  std::vector<std::pair<int64_t, std::string>> failures;
  if (team) {
    for (const std::string& part : team->allgather(failures_json(d, begin))) add_failures(part, failures);
  } else {
    failures = failures_of(d, begin);
  }
  const Failures f = sorted_failures(std::move(failures));
  ImageCache cache;
  cache.class_names = dataset.class_names;
  cache.seconds = d.seconds;
  cache.storage = CacheMode::none;
  fill_rows_metadata(cache, dataset, f.indices, f.reasons);
  if (cache.paths.empty() && options.allow_empty) return empty_cache(dataset, options);
  if (cache.paths.empty()) nothing_decoded(cache, dataset);
  auto files = std::make_shared<StreamedImages>();
  files->paths = cache.paths;
  files->height = options.height;
  files->width = options.width;
  files->crop_to_aspect = options.crop_to_aspect;
  files->threads = options.threads;
  cache.stream = std::move(files);
  log::infof("--cache none: the {} {} are decoded again in every epoch; nothing is kept", cache.size(), options.what);
  return cache;
}

}  // namespace

CacheMode resolved_cache_mode(const Dataset& dataset, const ImageCacheOptions& options, int copies) {
  const DataCachePolicy policy = options.cache.value_or(default_data_cache_policy());
  const uint64_t need = static_cast<uint64_t>(dataset.size()) * static_cast<uint64_t>(row_bytes_of(options));
  return choose_cache_mode(policy.mode, need, copies, physical_memory_bytes(), disk_free_bytes(policy.folder()));
}

ImageCache build_image_cache(const Dataset& dataset, const ImageCacheOptions& options, const CacheTeam* team) {
  if (options.height <= 0 || options.width <= 0) throw Error("image cache: the image size must be positive");
  const int64_t n = static_cast<int64_t>(dataset.size());
  if (n == 0 && options.allow_empty) return empty_cache(dataset, options);
  if (n == 0) throw Error("no images in " + dataset.source);
  const DataCachePolicy policy = options.cache.value_or(default_data_cache_policy());
  // A team has agreed on disk or none (distributed/shard.cpp); memory never comes here with one.
  const CacheMode mode = team ? policy.mode : resolved_cache_mode(dataset, options);
  ImageCache cache;
  if (mode == CacheMode::none) {
    if (policy.mode == CacheMode::automatic) {
      const double need = static_cast<double>(n) * row_bytes_of(options);
      log::warn(fmt::format("the decoded {} ({:.1f} GB) fit neither in memory nor on the disk of {} ({:.1f} GB "
                            "free): decoding them again every epoch (--cache none)",
                            options.what, need / 1e9, policy.folder().string(),
                            static_cast<double>(disk_free_bytes(policy.folder())) / 1e9),
                "point --cache-dir (or TABBY_CACHE_DIR) at a disk with room for them to decode only once");
    }
    cache = build_streamed(dataset, options, team);
  } else if (team || mode == CacheMode::disk) {
    cache = build_on_disk(dataset, options, policy, team);
  } else {
    cache = build_in_memory(dataset, options);
  }
  if (!cache.skipped.empty() && options.warn_skipped) log::warn(describe_skipped(cache.skipped));
  return cache;
}

}  // namespace tabby
