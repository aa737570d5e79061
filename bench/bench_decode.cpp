// Decode + resize throughput of tabby's image path: the work of the input
// pipeline's first pass per file, on the files of a folder (JPEG photos).
// Two ways, so the gain of the DCT-domain downscale is visible:
//   dct   load_image_resized: a JPEG decoded at a reduced DCT scale (1/2,
//         1/4, 1/8 while still >= the target), then bilinear resize
//   full  decode_image_file at full size, then the same resize
// Each mode runs on 1 thread and on every --threads count given (the files
// split into interleaved shares, one std::thread each), the way the image
// cache's workers share a dataset.
// Usage: bench_decode DIR [--size N]... [--threads T]... [--passes P]
// Prints one JSON object on stdout (images/s per mode, size and thread count);
// a first untimed pass over the files warms the page cache, so every timed
// pass reads from memory, as the peer's does.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Every JPEG/PNG file below dir, sorted (class folders or not).
std::vector<fs::path> image_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string ext = tabby::lower_extension(entry.path());
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// One pass of decode_one over every file on `threads` threads; returns the
// number of files that failed (there should be none).
template <typename F>
int run_pass(const std::vector<fs::path>& files, int threads, int size, F decode_one) {
  std::vector<int> failures(static_cast<size_t>(threads), 0);
  auto work = [&](int t) {
    std::vector<uint8_t> dst(static_cast<size_t>(size) * size * 3);  // one output row per thread, reused
    for (size_t i = static_cast<size_t>(t); i < files.size(); i += static_cast<size_t>(threads)) {
      try {
        decode_one(files[i], dst.data());
      } catch (const tabby::Error&) {
        ++failures[static_cast<size_t>(t)];
      }
    }
  };
  if (threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work, t);
    for (auto& th : pool) th.join();
  }
  int total = 0;
  for (int f : failures) total += f;
  return total;
}

// The best of `passes` timed passes, as images per second.
template <typename F>
nlohmann::json time_mode(const std::vector<fs::path>& files, int threads, int size, int passes, F decode_one) {
  std::vector<double> all;
  int failures = 0;
  for (int p = 0; p < passes; ++p) {
    auto t0 = Clock::now();
    failures = run_pass(files, threads, size, decode_one);
    all.push_back(seconds_since(t0));
  }
  const double best = *std::min_element(all.begin(), all.end());
  const double n = static_cast<double>(files.size());
  return {{"threads", threads},     {"size", size},           {"images", files.size()},
          {"failures", failures},   {"seconds", all},         {"best_seconds", best},
          {"images_per_s", n / best}, {"ms_per_image", best * 1000 / n}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_decode DIR [--size N]... [--threads T]... [--passes P]\n");
    return 2;
  }
  try {
    const fs::path dir = argv[1];
    std::vector<int> sizes, thread_counts = {1};
    int passes = 2;
    for (int i = 2; i < argc; i += 2) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) throw tabby::UsageError("flag " + flag + " needs a value");
      const int value = std::stoi(argv[i + 1]);
      if (flag == "--size") sizes.push_back(value);
      else if (flag == "--threads") thread_counts.push_back(std::max(1, value));
      else if (flag == "--passes") passes = std::max(1, value);
      else throw tabby::UsageError("unknown flag " + flag, "bench_decode DIR [--size N]... [--threads T]... [--passes P]");
    }
    if (sizes.empty()) sizes = {150};
    std::sort(thread_counts.begin(), thread_counts.end());
    thread_counts.erase(std::unique(thread_counts.begin(), thread_counts.end()), thread_counts.end());

    const auto files = image_files(dir);
    if (files.empty()) throw tabby::Error("no images under " + dir.string(), "pass a folder of JPEG files");

    // Warm the page cache so that every timed pass reads from memory.
    int64_t full_pixels = 0;
    for (const auto& f : files) {
      auto info = tabby::probe_image_file(f);
      full_pixels += static_cast<int64_t>(info.width) * info.height;
      (void)tabby::read_file(f);
    }

    nlohmann::json out = {{"dir", dir.string()},
                          {"images", files.size()},
                          {"mean_megapixels", static_cast<double>(full_pixels) / static_cast<double>(files.size()) / 1e6},
                          {"passes", passes},
                          {"results", nlohmann::json::array()}};
    for (int size : sizes) {
      for (int threads : thread_counts) {
        auto dct = time_mode(files, threads, size, passes, [size](const fs::path& f, uint8_t* dst) {
          tabby::load_image_resized(f, size, size, /*crop_to_aspect=*/false, dst);
        });
        dct["mode"] = "dct";
        out["results"].push_back(dct);
        auto full = time_mode(files, threads, size, passes, [size](const fs::path& f, uint8_t* dst) {
          tabby::Image img = tabby::decode_image_file(f);
          tabby::resize_bilinear_into(img, size, size, dst);
        });
        full["mode"] = "full";
        out["results"].push_back(full);
        std::fprintf(stderr, "bench_decode %dpx, %d thread(s): dct %.0f images/s, full decode %.0f images/s\n", size,
                     threads, dct["images_per_s"].get<double>(), full["images_per_s"].get<double>());
      }
    }
    std::printf("%s\n", out.dump().c_str());
  } catch (const tabby::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
