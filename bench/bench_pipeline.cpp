// Input-pipeline throughput of tabby on a class-per-folder dataset:
//   first pass  build_image_cache (decode + resize every file into one uint8
//               tensor) with 1 and with 2 worker threads
//   epochs      BatchLoader over that cache: shuffled batches, uint8 NHWC ->
//               float (B,3,H,W), prepared on the loader's background thread
// Together: what one training run spends on input before and during its
// epochs. Usage: bench_pipeline DIR [--size N] [--batch B] [--epochs E]
// [--threads T]... Prints one JSON object on stdout.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tabby/api/train_job.h"
#include "tabby/dataset/folder.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_pipeline DIR [--size N] [--batch B] [--epochs E] [--threads T]...\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    int64_t size = 150, batch = 32;
    int epochs = 2;
    std::vector<int> thread_counts;
    for (int i = 2; i < argc; i += 2) {
      const std::string flag = argv[i];
      if (i + 1 >= argc) throw tabby::UsageError("flag " + flag + " needs a value");
      const int value = std::stoi(argv[i + 1]);
      if (flag == "--size") size = value;
      else if (flag == "--batch") batch = value;
      else if (flag == "--epochs") epochs = value;
      else if (flag == "--threads") thread_counts.push_back(value);
      else throw tabby::UsageError("unknown flag " + flag);
    }
    if (thread_counts.empty()) thread_counts = {1, 2};
    tabby::configure_threads(0);  // intra-op threads for the batch conversion, as `tabby train` sets them

    const tabby::Dataset dataset = tabby::scan_folder(dir);
    // Warm the page cache: the peer's first epoch reads the same warm files.
    for (const auto& s : dataset.samples) (void)tabby::read_file(s.path);

    nlohmann::json out = {{"dir", dir.string()}, {"images", dataset.size()}, {"size", size},
                          {"batch", batch},      {"first_pass", nlohmann::json::array()},
                          {"epochs", nlohmann::json::array()}};
    tabby::ImageCache cache;
    for (int threads : thread_counts) {
      tabby::ImageCacheOptions options;
      options.height = size;
      options.width = size;
      options.threads = threads;
      options.progress = false;
      auto t0 = Clock::now();
      cache = tabby::build_image_cache(dataset, options);
      const double s = seconds_since(t0);
      out["first_pass"].push_back({{"threads", threads},
                                   {"seconds", s},
                                   {"images", cache.size()},
                                   {"skipped", cache.skipped.size()},
                                   {"images_per_s", cache.size() / s}});
      std::fprintf(stderr, "bench_pipeline first pass, %d threads: %.2f s, %.0f images/s\n", threads, s,
                   cache.size() / s);
    }

    // Epochs from the cache: the consumer only takes each batch, as the
    // peer's loop over a DataLoader does.
    tabby::LoaderOptions lo;
    lo.batch_size = batch;
    lo.shuffle = true;
    lo.seed = 1337;
    tabby::BatchLoader loader(cache.images, cache.labels, lo);
    for (int e = 1; e <= epochs; ++e) {
      auto t0 = Clock::now();
      loader.start_epoch(e);
      int64_t seen = 0;
      double checksum = 0;
      while (auto b = loader.next()) {
        seen += b->inputs.size(0);
        checksum += b->inputs[0][0][0][0].item<double>();  // keeps the batch observably used
      }
      const double s = seconds_since(t0);
      out["epochs"].push_back({{"epoch", e}, {"seconds", s}, {"images", seen}, {"images_per_s", seen / s}});
      std::fprintf(stderr, "bench_pipeline epoch %d from the cache: %.3f s, %.0f images/s (%g)\n", e, s, seen / s,
                   checksum);
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
