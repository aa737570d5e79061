// Single-thread decode + resize throughput of tabby's image path, the work
// of the input pipeline's first pass per file. Three ways, so the gain of each
// step is visible:
//   dct   load_image_resized: a JPEG decoded at a reduced DCT scale (1/2,
//         1/4, 1/8 while still >= the target), then bilinear resize
//   full  decode_image_file at full size, then the same resize
// Usage: bench_decode DIR [--size N]... [--passes P]
// Prints one JSON object on stdout (images/s per mode and size); the first
// pass over the files only warms the page cache and is not timed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tabby/dataset/folder.h"
#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Every image file below dir (class folders or not).
std::vector<std::filesystem::path> image_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string ext = tabby::lower_extension(entry.path());
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// One timed pass of `decode_one` over every file: images per second. Files
// that fail to decode are counted, not fatal (there should be none).
template <typename F>
nlohmann::json time_pass(const std::vector<std::filesystem::path>& files, int passes, F decode_one) {
  double best = 1e30;
  std::vector<double> all;
  int failures = 0;
  for (int p = 0; p < passes; ++p) {
    failures = 0;
    auto t0 = Clock::now();
    for (const auto& f : files) {
      try {
        decode_one(f);
      } catch (const tabby::Error&) {
        ++failures;
      }
    }
    const double s = seconds_since(t0);
    all.push_back(s);
    best = std::min(best, s);
  }
  const double n = static_cast<double>(files.size());
  return {{"images", files.size()}, {"failures", failures}, {"seconds", all},
          {"best_seconds", best},   {"images_per_s", n / best}, {"ms_per_image", best * 1000 / n}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_decode DIR [--size N]... [--passes P]\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::vector<int> sizes;
  int passes = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--size") == 0) sizes.push_back(std::stoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--passes") == 0) passes = std::max(1, std::stoi(argv[i + 1]));
  }
  if (sizes.empty()) sizes = {150, 224};

  try {
    const auto files = image_files(dir);
    if (files.empty()) throw tabby::Error("no images under " + dir.string(), "pass a folder of JPEG files");

    // Warm the page cache (and the allocator) so every timed pass reads from memory.
    int64_t full_pixels = 0;
    for (const auto& f : files) {
      auto info = tabby::probe_image_file(f);
      full_pixels += static_cast<int64_t>(info.width) * info.height;
      (void)tabby::read_file(f);
    }

    nlohmann::json out = {{"dir", dir.string()},
                          {"images", files.size()},
                          {"mean_megapixels", static_cast<double>(full_pixels) / files.size() / 1e6},
                          {"threads", 1},
                          {"passes", passes},
                          {"results", nlohmann::json::array()}};
    for (int size : sizes) {
      std::vector<uint8_t> dst(static_cast<size_t>(size) * size * 3);
      auto dct = time_pass(files, passes, [&](const std::filesystem::path& f) {
        tabby::load_image_resized(f, size, size, /*crop_to_aspect=*/false, dst.data());
      });
      dct["mode"] = "dct";
      dct["size"] = size;
      out["results"].push_back(dct);
      auto full = time_pass(files, passes, [&](const std::filesystem::path& f) {
        tabby::Image img = tabby::decode_image_file(f);
        tabby::resize_bilinear_into(img, size, size, dst.data());
      });
      full["mode"] = "full";
      full["size"] = size;
      out["results"].push_back(full);
      std::fprintf(stderr, "bench_decode %dpx: dct %.0f images/s, full decode %.0f images/s\n", size,
                   dct["images_per_s"].get<double>(), full["images_per_s"].get<double>());
    }
    std::printf("%s\n", out.dump().c_str());
  } catch (const tabby::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
