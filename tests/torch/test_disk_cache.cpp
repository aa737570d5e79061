// The disk cache of decoded images (pipeline/rows_file.h, cache_policy.h): the
// same rows, labels and skipped files as the in-memory cache; reused by a second
// build without decoding; a new file when a file is changed, added or removed;
// a half-written or damaged file never trusted; training that ends with the same
// weights in every mode; `tabby cache` lists, prunes and removes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "support/image_encode.h"
#include "support/test_support.h"
#include "support/training_data.h"
#include "tabby/dataset/dataset.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/cache_policy.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/pipeline/rows_file.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::describe;
using testing::run_tabby;

// red/ and blue/ tinted PNGs with a truncated file and an empty one among them.
Dataset tinted_dataset(const fs::path& dir) {
  testing::write_tinted_images(dir / "blue", 5, false, 1);
  testing::write_tinted_images(dir / "red", 5, true, 2);
  const std::string png = encode_png(Image(12, 12));
  testing::write_bytes(dir / "red" / "cut.png", png.substr(0, png.size() / 2));
  testing::write_bytes(dir / "blue" / "empty.jpg", "");
  Dataset d;
  d.class_names = {"blue", "red"};
  d.source = dir.string();
  for (int label = 0; label < 2; ++label) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir / d.class_names[label])) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) d.samples.push_back({f, label});
  }
  return d;
}

ImageCacheOptions cache_options(CacheMode mode, const fs::path& dir) {
  ImageCacheOptions o;
  o.height = 10;
  o.width = 12;
  o.threads = 2;
  o.progress = false;
  o.warn_skipped = false;
  o.cache = DataCachePolicy{mode, dir};
  return o;
}

void expect_same_cache(const ImageCache& a, const ImageCache& b) {
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.paths, b.paths);
  ASSERT_EQ(a.skipped.size(), b.skipped.size());
  for (size_t i = 0; i < a.skipped.size(); ++i) {
    EXPECT_EQ(a.skipped[i].path, b.skipped[i].path);
    EXPECT_EQ(a.skipped[i].reason, b.skipped[i].reason);
  }
}

size_t finished_files(const fs::path& dir) {
  const auto files = list_rows_files(dir);
  return static_cast<size_t>(std::count_if(files.begin(), files.end(), [](const auto& f) { return f.finished; }));
}

TEST(DiskCache, HoldsWhatMemoryHoldsAndIsReusedWithoutDecoding) {
  const fs::path dir = testing::scratch_dir("disk_cache_same");
  const Dataset d = tinted_dataset(dir / "data");
  const ImageCache memory = build_image_cache(d, cache_options(CacheMode::memory, dir / "cache"));
  EXPECT_EQ(memory.storage, CacheMode::memory);
  EXPECT_FALSE(fs::exists(dir / "cache"));
  ASSERT_EQ(memory.size(), 10);
  ASSERT_EQ(memory.skipped.size(), 2u);

  const ImageCache disk = build_image_cache(d, cache_options(CacheMode::disk, dir / "cache"));
  EXPECT_EQ(disk.storage, CacheMode::disk);
  EXPECT_FALSE(disk.reused);
  EXPECT_TRUE(fs::exists(disk.cache_file));
  EXPECT_EQ(disk.cache_file.parent_path(), dir / "cache");
  expect_same_cache(memory, disk);

  const ImageCache again = build_image_cache(d, cache_options(CacheMode::disk, dir / "cache"));
  EXPECT_TRUE(again.reused);
  EXPECT_EQ(again.cache_file, disk.cache_file);
  expect_same_cache(memory, again);

  const auto files = list_rows_files(dir / "cache");
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(files[0].finished);
  EXPECT_TRUE(files[0].problem.empty()) << files[0].problem;
  EXPECT_EQ(files[0].rows, 10);
  EXPECT_EQ(files[0].files, 12);
  EXPECT_EQ(files[0].height, 10);
  EXPECT_EQ(files[0].width, 12);
  EXPECT_EQ(files[0].source, d.source);
  // The header, the rows and the metadata: nothing else.
  EXPECT_GT(files[0].bytes, static_cast<uint64_t>(kRowsHeaderBytes + 10 * 10 * 12 * 3));
}

TEST(StreamedImages, GiveTheCachesRowsDecodedPerBatch) {
  const fs::path dir = testing::scratch_dir("streamed_rows");
  const Dataset d = tinted_dataset(dir / "data");
  const ImageCache memory = build_image_cache(d, cache_options(CacheMode::memory, dir / "cache"));
  const ImageCache streamed = build_image_cache(d, cache_options(CacheMode::none, dir / "cache"));
  EXPECT_EQ(streamed.storage, CacheMode::none);
  EXPECT_FALSE(streamed.images.defined()) << "nothing is kept";
  EXPECT_FALSE(fs::exists(dir / "cache"));
  ASSERT_EQ(streamed.size(), memory.size());
  EXPECT_EQ(streamed.paths, memory.paths);
  EXPECT_TRUE(torch::equal(streamed.labels, memory.labels));
  ASSERT_EQ(streamed.skipped.size(), memory.skipped.size());
  const auto order = torch::tensor(std::vector<int64_t>{9, 0, 4, 4, 7}, torch::kLong);
  EXPECT_TRUE(torch::equal(streamed.rows().gather(order), memory.images.index_select(0, order)));
  EXPECT_TRUE(torch::equal(streamed.rows().narrow(3, 5).gather(torch::tensor(std::vector<int64_t>{1, 0}, torch::kLong)),
                           memory.images.narrow(0, 3, 5).index_select(0, torch::tensor(std::vector<int64_t>{1, 0}, torch::kLong))));
  // Batches are the same from every source.
  BatchLoader a(memory.rows(), memory.labels, LoaderOptions::training(4, 5, torch::kCPU));
  BatchLoader b(streamed.rows(), streamed.labels, LoaderOptions::training(4, 5, torch::kCPU));
  a.start_epoch(2);
  b.start_epoch(2);
  while (auto x = a.next()) {
    auto y = b.next();
    ASSERT_TRUE(y.has_value());
    EXPECT_TRUE(torch::equal(x->inputs, y->inputs));
    EXPECT_TRUE(torch::equal(x->labels, y->labels));
  }
  // A file that changes under a streamed run is named.
  testing::write_bytes(streamed.paths[2], "gone bad");
  try {
    streamed.rows().gather(torch::tensor(std::vector<int64_t>{2}, torch::kLong));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(streamed.paths[2].string()), std::string::npos) << e.what();
  }
}

TEST(DiskCache, AChangedAddedOrRemovedFileMakesANewCache) {
  const fs::path dir = testing::scratch_dir("disk_cache_key");
  Dataset d = tinted_dataset(dir / "data");
  const fs::path cache = dir / "cache";
  const std::string key = pixels_key(d, 10, 12, false);
  ASSERT_FALSE(build_image_cache(d, cache_options(CacheMode::disk, cache)).reused);
  EXPECT_TRUE(build_image_cache(d, cache_options(CacheMode::disk, cache)).reused);
  // Size and crop are part of the key.
  EXPECT_NE(pixels_key(d, 10, 13, false), key);
  EXPECT_NE(pixels_key(d, 10, 12, true), key);

  // Changed: the pixels of the first red image, same size.
  const fs::path changed = d.samples[7].path;
  testing::write_tinted_images(dir / "other", 1, false, 9);
  fs::copy_file(dir / "other" / "img_0.png", changed, fs::copy_options::overwrite_existing);
  fs::last_write_time(changed, fs::last_write_time(changed) + std::chrono::seconds(5));
  EXPECT_NE(pixels_key(d, 10, 12, false), key);
  const ImageCache after_change = build_image_cache(d, cache_options(CacheMode::disk, cache));
  EXPECT_FALSE(after_change.reused);
  EXPECT_TRUE(torch::equal(after_change.images, build_image_cache(d, cache_options(CacheMode::memory, cache)).images));

  // Added and removed.
  d.samples.push_back({dir / "other" / "img_0.png", 0});
  const ImageCache after_add = build_image_cache(d, cache_options(CacheMode::disk, cache));
  EXPECT_FALSE(after_add.reused);
  EXPECT_EQ(after_add.size(), 11);
  d.samples.erase(d.samples.begin() + 1);  // blue/img_0.png (the first is the empty file)
  const ImageCache after_remove = build_image_cache(d, cache_options(CacheMode::disk, cache));
  EXPECT_FALSE(after_remove.reused);
  EXPECT_EQ(after_remove.size(), 10);
  EXPECT_EQ(finished_files(cache), 4u);
}

TEST(DiskCache, AHalfWrittenOrDamagedFileIsNeverUsed) {
  const fs::path dir = testing::scratch_dir("disk_cache_partial");
  const Dataset d = tinted_dataset(dir / "data");
  const fs::path cache = dir / "cache";
  const std::string key = pixels_key(d, 10, 12, false);
  const ImageCache memory = build_image_cache(d, cache_options(CacheMode::memory, cache));

  // A writer killed halfway leaves its partial file, under a name no reader opens.
  {
    RowsWriter killed = RowsWriter::create(cache, key, 12, 10, 12);
    std::memset(killed.row(0), 77, 10 * 12 * 3);
    const fs::path dead = cache / (key + ".somehost-gone.999999999.partial");
    fs::rename(killed.partial_path(), dead);
  }
  // Another host's partial file cannot be judged from here: it is left alone.
  auto files = list_rows_files(cache);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_FALSE(files[0].finished);
  EXPECT_EQ(open_rows(cache, key, 12, 10, 12), std::nullopt);
  // One of this host's, whose process is gone, is removed by the next writer.
  RowsWriter mine = RowsWriter::create(cache, key, 12, 10, 12);
  const std::string name = mine.partial_path().filename().string();  // <key>.<host>.<pid>.partial
  mine.abandon();
  EXPECT_FALSE(fs::exists(cache / name));
  const std::string key_and_host = name.substr(0, name.rfind('.', name.size() - std::string(".partial").size() - 1));
  testing::write_bytes(cache / (key_and_host + ".999999999.partial"), "half");

  const ImageCache built = build_image_cache(d, cache_options(CacheMode::disk, cache));
  EXPECT_FALSE(built.reused);
  expect_same_cache(memory, built);
  files = list_rows_files(cache);
  EXPECT_EQ(files.size(), 2u) << "the finished file and the other host's partial one";
  for (const auto& f : files) EXPECT_TRUE(f.finished || f.writer_alive) << f.path;

  // A finished file cut short (a disk that filled, a copy that stopped) is rebuilt.
  fs::resize_file(built.cache_file, fs::file_size(built.cache_file) - 7);
  std::string problem;
  EXPECT_EQ(open_rows(cache, key, 12, 10, 12, &problem), std::nullopt);
  EXPECT_NE(problem.find("damaged"), std::string::npos) << problem;
  const ImageCache rebuilt = build_image_cache(d, cache_options(CacheMode::disk, cache));
  EXPECT_FALSE(rebuilt.reused);
  expect_same_cache(memory, rebuilt);
  // And a file that is not a cache at all, under a cache's name.
  testing::write_bytes(rebuilt.cache_file, std::string(5000, 'x'));
  EXPECT_FALSE(build_image_cache(d, cache_options(CacheMode::disk, cache)).reused);
  EXPECT_TRUE(build_image_cache(d, cache_options(CacheMode::disk, cache)).reused);
}

TEST(DiskCache, AutoKeepsASetInMemoryUnlessItTakesAQuarterOfTheRam) {
  const uint64_t gb = uint64_t{1} << 30;
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, gb, 1, 24 * gb), CacheMode::memory);
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, 6 * gb, 1, 24 * gb), CacheMode::memory);
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, 7 * gb, 1, 24 * gb), CacheMode::disk);
  // Each rank of a machine would hold its own copy in memory.
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, 4 * gb, 2, 24 * gb), CacheMode::disk);
  // ... and gather it from one another: ranks share the disk cache beyond a small set.
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, gb / 2, 2, 24 * gb), CacheMode::disk);
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, gb / 8, 2, 24 * gb), CacheMode::memory);
  EXPECT_EQ(choose_cache_mode(CacheMode::memory, 20 * gb, 1, 24 * gb), CacheMode::memory);
  EXPECT_EQ(choose_cache_mode(CacheMode::disk, 1, 1, 24 * gb), CacheMode::disk);
  // Beyond the RAM, the disk decides: room for the cache (and a margin), or decode per batch.
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, 100 * gb, 1, 24 * gb, 200 * gb), CacheMode::disk);
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, 100 * gb, 1, 24 * gb, 100 * gb), CacheMode::none);
  EXPECT_EQ(choose_cache_mode(CacheMode::automatic, gb, 1, 24 * gb, 0), CacheMode::memory);
  EXPECT_EQ(parse_cache_mode("none"), CacheMode::none);
  EXPECT_EQ(parse_cache_mode("disk"), CacheMode::disk);
  EXPECT_EQ(parse_cache_mode("auto"), CacheMode::automatic);
  EXPECT_THROW(parse_cache_mode("ram"), UsageError);
}

std::vector<std::string> tiny_train(const fs::path& data, const fs::path& out, const std::string& mode,
                                    const fs::path& cache) {
  return {"train", "--data", data.string(), "--validation-split", "0.25", "--model", "tutorial-cnn-augmented",
          "--image-size", "16", "--epochs", "2", "--batch-size", "4", "--seed", "11", "--threads", "1",
          "--no-report", "--out", out.string(), "--cache", mode, "--cache-dir", cache.string()};
}

TEST(DiskCache, TrainingEndsWithTheSameWeightsInEveryMode) {
  const fs::path dir = testing::scratch_dir("disk_cache_train");
  testing::write_two_class_folder(dir / "data", 10, 16, 3);
  testing::write_bytes(dir / "data" / "left" / "broken.jpg", "not a jpeg");
  const fs::path cache = dir / "cache";
  CommandResult memory = run_tabby(tiny_train(dir / "data", dir / "memory", "memory", cache));
  ASSERT_EQ(memory.exit_code, 0) << describe(memory);
  EXPECT_FALSE(fs::exists(cache));
  EXPECT_NE(memory.err.find("broken.jpg"), std::string::npos) << memory.err;

  CommandResult disk = run_tabby(tiny_train(dir / "data", dir / "disk", "disk", cache));
  ASSERT_EQ(disk.exit_code, 0) << describe(disk);
  EXPECT_NE(disk.err.find("wrote the disk cache " + cache.string()), std::string::npos) << disk.err;
  EXPECT_NE(disk.err.find("broken.jpg"), std::string::npos) << "skipped files are named in every mode\n" << disk.err;
  testing::expect_same_tensors(dir / "memory" / "weights.safetensors", dir / "disk" / "weights.safetensors");

  // A second run (here: evaluate on the same files, then training again) maps it without decoding.
  CommandResult again = run_tabby(tiny_train(dir / "data", dir / "again", "disk", cache));
  ASSERT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_NE(again.err.find("reusing the disk cache"), std::string::npos) << again.err;
  testing::expect_same_tensors(dir / "memory" / "weights.safetensors", dir / "again" / "weights.safetensors");
  CommandResult evaluated = run_tabby({"evaluate", (dir / "disk").string(), "--data", (dir / "data").string(),
                                       "--cache", "disk", "--cache-dir", cache.string()});
  ASSERT_EQ(evaluated.exit_code, 0) << describe(evaluated);
  EXPECT_NE(evaluated.err.find("disk cache"), std::string::npos) << evaluated.err;

  CommandResult streamed = run_tabby(tiny_train(dir / "data", dir / "none", "none", cache));
  ASSERT_EQ(streamed.exit_code, 0) << describe(streamed);
  EXPECT_NE(streamed.err.find("--cache none"), std::string::npos) << streamed.err;
  EXPECT_NE(streamed.err.find("broken.jpg"), std::string::npos) << streamed.err;
  testing::expect_same_tensors(dir / "memory" / "weights.safetensors", dir / "none" / "weights.safetensors");

  CommandResult bad = run_tabby(tiny_train(dir / "data", dir / "bad", "ram", cache));
  EXPECT_EQ(bad.exit_code, 2) << describe(bad);
  EXPECT_NE(bad.err.find("--cache must be auto, memory, disk or none, not 'ram'"), std::string::npos) << bad.err;
}

TEST(DiskCache, ARunStoppedLikeACrashResumesFromItsDiskCacheToTheSameWeights) {
  const fs::path dir = testing::scratch_dir("disk_cache_resume");
  testing::write_two_class_folder(dir / "data", 10, 16, 4);
  const fs::path cache = dir / "cache";
  auto args = [&](const fs::path& out, const std::string& mode) {
    std::vector<std::string> a = tiny_train(dir / "data", out, mode, cache);
    *(std::find(a.begin(), a.end(), "--epochs") + 1) = "3";
    return a;
  };
  CommandResult whole = run_tabby(args(dir / "whole", "memory"));
  ASSERT_EQ(whole.exit_code, 0) << describe(whole);
  std::vector<std::string> stopped = args(dir / "parts", "disk");
  stopped.insert(stopped.end(), {"--stop-after", "1"});
  CommandResult r = run_tabby(stopped);
  EXPECT_NE(r.exit_code, 0) << "the test hook stops the run like a crash";
  r = run_tabby({"train", "--resume", (dir / "parts").string(), "--threads", "1", "--cache", "disk", "--cache-dir",
                 cache.string()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("reusing the disk cache"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("resuming after epoch 1/3"), std::string::npos) << r.err;
  testing::expect_same_tensors(dir / "whole" / "weights.safetensors", dir / "parts" / "weights.safetensors");
}

TEST(DiskCache, AFileBackedTensorIsZeroedWritableAndLeavesNoFile) {
  const fs::path dir = testing::scratch_dir("file_backed_tensor");
  {
    torch::Tensor t = file_backed_tensor(dir, {3, 4}, torch::kFloat32);
    EXPECT_EQ(t.sizes().vec(), (std::vector<int64_t>{3, 4}));
    EXPECT_EQ(t.scalar_type(), torch::kFloat32);
    EXPECT_EQ(t.abs().sum().item<float>(), 0.0f);
    t.narrow(0, 1, 1).fill_(2.5f);
    EXPECT_EQ(t.sum().item<float>(), 10.0f);
    EXPECT_TRUE(fs::is_empty(dir)) << "the file is deleted at once; the mapping keeps it";
  }
  EXPECT_THROW(file_backed_tensor("/proc/no-such-folder", {2}, torch::kFloat32), Error);
}

TEST(CacheCommand, ListsPrunesAndRemovesCaches) {
  const fs::path dir = testing::scratch_dir("cache_command");
  const Dataset d = tinted_dataset(dir / "data");
  const fs::path cache = dir / "cache";
  build_image_cache(d, cache_options(CacheMode::disk, cache));
  ImageCacheOptions other = cache_options(CacheMode::disk, cache);
  other.height = 8;
  build_image_cache(d, other);

  CommandResult r = run_tabby({"cache", "list", "--cache-dir", cache.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto listed = nlohmann::json::parse(r.out);
  ASSERT_EQ(listed["caches"].size(), 2u) << r.out;
  for (const auto& c : listed["caches"]) {
    EXPECT_EQ(c["state"], "ready");
    EXPECT_EQ(c["images"], 10);
    EXPECT_EQ(c["source"], d.source);
  }
  r = run_tabby({"cache", "list", "--cache-dir", cache.string()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("2 cache files"), std::string::npos) << r.out;

  r = run_tabby({"cache", "remove", "--cache-dir", cache.string(), "no-such-key"});
  EXPECT_EQ(r.exit_code, 1) << describe(r);
  EXPECT_NE(r.err.find("no cache in"), std::string::npos) << r.err;
  r = run_tabby({"cache", "remove", "--cache-dir", cache.string(), listed["caches"][0]["key"]});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(finished_files(cache), 1u);
  r = run_tabby({"cache", "prune", "--cache-dir", cache.string(), "--max-size", "0"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(finished_files(cache), 0u);
  EXPECT_NE(r.out.find("removed 1 cache file"), std::string::npos) << r.out;
  r = run_tabby({"cache", "remove", "--cache-dir", cache.string(), "--all"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  r = run_tabby({"cache", "prune", "--cache-dir", cache.string()});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
}

}  // namespace
}  // namespace tabby
