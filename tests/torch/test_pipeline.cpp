// The input pipeline: the image cache (every file decoded and resized once,
// uint8 (N,H,W,3), broken files skipped, counted and named) and the batch
// loader (every image once per epoch, a new seeded order each epoch, the same
// order for the same seed, prefetching that does not change the batches).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "support/test_support.h"
#include "tabby/dataset/dataset.h"
#include "support/image_encode.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img(w, h);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    img.pixels[i] = r;
    img.pixels[i + 1] = g;
    img.pixels[i + 2] = b;
  }
  return img;
}

// Two classes of solid-colour PNGs of assorted sizes, with broken files mixed
// in; the colour of image k is (10 + 20k, 200 - 10k, 7k) so rows can be
// matched to files.
struct Fixture {
  Dataset dataset;
  std::vector<std::array<uint8_t, 3>> colours;  // per good sample, in dataset order
  std::vector<fs::path> broken;
};

Fixture make_fixture(const std::string& name) {
  const fs::path dir = testing::scratch_dir(name);
  Fixture f;
  f.dataset.class_names = {"cats", "dogs"};
  f.dataset.source = dir.string();
  int k = 0;
  for (int label = 0; label < 2; ++label) {
    for (int i = 0; i < 5; ++i, ++k) {
      const uint8_t r = static_cast<uint8_t>(10 + 20 * k), g = static_cast<uint8_t>(200 - 10 * k),
                    b = static_cast<uint8_t>(7 * k);
      const fs::path path = dir / f.dataset.class_names[label] / ("img" + std::to_string(k) + ".png");
      testing::write_bytes(path, encode_png(solid(9 + 3 * i, 7 + 2 * k, r, g, b)));
      f.dataset.samples.push_back({path, label});
      f.colours.push_back({r, g, b});
      if (i == 1) {
        // A zero-byte file and a truncated PNG right after a good one.
        const fs::path empty = dir / f.dataset.class_names[label] / ("empty" + std::to_string(k) + ".jpg");
        testing::write_bytes(empty, "");
        f.dataset.samples.push_back({empty, label});
        f.broken.push_back(empty);
        const std::string png = encode_png(solid(20, 20, 1, 2, 3));
        const fs::path cut = dir / f.dataset.class_names[label] / ("cut" + std::to_string(k) + ".png");
        testing::write_bytes(cut, png.substr(0, png.size() / 2));
        f.dataset.samples.push_back({cut, label});
        f.broken.push_back(cut);
      }
    }
  }
  return f;
}

TEST(ImageCache, HoldsEveryReadableImageAsUint8Nhwc) {
  Fixture f = make_fixture("pipeline_cache");
  ImageCacheOptions options;
  options.height = 6;
  options.width = 8;
  options.threads = 2;
  options.progress = false;
  ImageCache cache = build_image_cache(f.dataset, options);

  ASSERT_EQ(cache.size(), 10);
  EXPECT_EQ(cache.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(cache.images.sizes().vec(), (std::vector<int64_t>{10, 6, 8, 3}));
  EXPECT_TRUE(cache.images.is_contiguous());
  EXPECT_EQ(cache.labels.scalar_type(), torch::kLong);
  EXPECT_EQ(cache.class_names, f.dataset.class_names);
  EXPECT_EQ(cache.class_counts(), (std::vector<int64_t>{5, 5}));

  // Rows follow the dataset order with the broken files left out, and each
  // row is its own file's pixels (solid colours survive resizing exactly).
  std::vector<fs::path> good;
  for (const auto& s : f.dataset.samples) {
    if (std::find(f.broken.begin(), f.broken.end(), s.path) == f.broken.end()) good.push_back(s.path);
  }
  ASSERT_EQ(cache.paths, good);
  for (int64_t i = 0; i < 10; ++i) {
    SCOPED_TRACE(cache.paths[i].string());
    EXPECT_EQ(cache.labels[i].item<int64_t>(), i < 5 ? 0 : 1);
    for (int c = 0; c < 3; ++c) {
      auto channel = cache.images[i].select(2, c);  // (H,W)
      EXPECT_EQ(channel.min().item<int>(), f.colours[i][c]);
      EXPECT_EQ(channel.max().item<int>(), f.colours[i][c]);
    }
  }

  // Broken files are counted and named with a reason.
  ASSERT_EQ(cache.skipped.size(), 4u);
  for (size_t i = 0; i < cache.skipped.size(); ++i) {
    EXPECT_NE(std::find(f.broken.begin(), f.broken.end(), cache.skipped[i].path), f.broken.end());
    EXPECT_FALSE(cache.skipped[i].reason.empty());
  }
  const std::string text = describe_skipped(cache.skipped, 3);
  EXPECT_EQ(text.rfind("4 files could not be decoded and were skipped: ", 0), 0u) << text;
  EXPECT_NE(text.find("and 1 more"), std::string::npos) << text;
  EXPECT_NE(text.find(cache.skipped[0].path.filename().string()), std::string::npos) << text;
  EXPECT_EQ(describe_skipped({}), "no files skipped");
  EXPECT_EQ(describe_skipped({cache.skipped[0]}).rfind("1 file could not be decoded and was skipped", 0), 0u);
}

TEST(ImageCache, ThreadCountDoesNotChangeTheResult) {
  Fixture f = make_fixture("pipeline_threads");
  ImageCacheOptions options;
  options.height = 5;
  options.width = 5;
  options.progress = false;
  options.threads = 1;
  ImageCache one = build_image_cache(f.dataset, options);
  options.threads = 4;
  ImageCache four = build_image_cache(f.dataset, options);
  EXPECT_TRUE(torch::equal(one.images, four.images));
  EXPECT_TRUE(torch::equal(one.labels, four.labels));
  EXPECT_EQ(one.paths, four.paths);
  EXPECT_EQ(one.skipped.size(), four.skipped.size());
}

TEST(ImageCache, NothingReadableIsAClearError) {
  const fs::path dir = testing::scratch_dir("pipeline_unreadable");
  Dataset d;
  d.class_names = {"a"};
  d.source = dir.string();
  for (int i = 0; i < 3; ++i) {
    const fs::path p = dir / "a" / ("bad" + std::to_string(i) + ".jpg");
    testing::write_bytes(p, "not an image at all");
    d.samples.push_back({p, 0});
  }
  ImageCacheOptions options;
  options.height = options.width = 4;
  options.progress = false;
  try {
    build_image_cache(d, options);
    FAIL() << "a dataset of broken files was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("none of the 3 files"), std::string::npos) << msg;
    EXPECT_NE(msg.find(dir.string()), std::string::npos) << msg;
  }
  Dataset empty;
  empty.source = "nowhere";
  EXPECT_THROW(build_image_cache(empty, options), Error);
  options.height = 0;
  EXPECT_THROW(build_image_cache(d, options), Error);
}

// --- batch loader -----------------------------------------------------------

// N images of 2x3 whose every pixel holds the row index, labels = index % 3.
std::pair<torch::Tensor, torch::Tensor> indexed_source(int64_t n) {
  auto images = torch::arange(n, torch::kLong).to(torch::kUInt8).view({n, 1, 1, 1}).expand({n, 2, 3, 3}).contiguous();
  auto labels = torch::arange(n, torch::kLong).remainder(3);
  return {images, labels};
}

// All batches of one epoch.
std::vector<Batch> run_epoch(BatchLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(*b);
  EXPECT_FALSE(loader.next().has_value());  // stays finished
  return out;
}

std::vector<int64_t> order_of(const std::vector<Batch>& batches) {
  std::vector<int64_t> order;
  for (const auto& b : batches) {
    for (int64_t i = 0; i < b.indices.size(0); ++i) order.push_back(b.indices[i].item<int64_t>());
  }
  return order;
}

TEST(BatchLoader, EveryImageOncePerEpochAsFloatNchw) {
  auto [images, labels] = indexed_source(23);
  LoaderOptions options;
  options.batch_size = 5;
  options.shuffle = true;
  options.seed = 17;
  BatchLoader loader(images, labels, options);
  EXPECT_EQ(loader.num_samples(), 23);
  EXPECT_EQ(loader.num_batches(), 5);
  auto batches = run_epoch(loader, 0);
  ASSERT_EQ(batches.size(), 5u);
  EXPECT_EQ(batches.back().indices.size(0), 3);  // the remainder is kept
  auto order = order_of(batches);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> all(23);
  for (int64_t i = 0; i < 23; ++i) all[i] = i;
  EXPECT_EQ(sorted, all);
  EXPECT_NE(order, all);  // shuffled
  EXPECT_EQ(order, loader.epoch_order(0));

  for (const auto& b : batches) {
    const int64_t n = b.indices.size(0);
    EXPECT_EQ(b.inputs.scalar_type(), torch::kFloat32);
    EXPECT_EQ(b.inputs.sizes().vec(), (std::vector<int64_t>{n, 3, 2, 3}));
    // Values in [0, 255], each image its own row of the source, labels aligned.
    auto expected = images.index_select(0, b.indices).permute({0, 3, 1, 2}).to(torch::kFloat32);
    EXPECT_TRUE(torch::equal(b.inputs, expected));
    EXPECT_TRUE(torch::equal(b.labels, labels.index_select(0, b.indices)));
  }
}

TEST(BatchLoader, OrderIsReshuffledPerEpochAndRepeatsForASeed) {
  auto [images, labels] = indexed_source(40);
  LoaderOptions options;
  options.batch_size = 8;
  options.shuffle = true;
  options.seed = 3;
  BatchLoader a(images, labels, options), b(images, labels, options);
  auto a0 = order_of(run_epoch(a, 0)), a1 = order_of(run_epoch(a, 1)), a2 = order_of(run_epoch(a, 2));
  EXPECT_NE(a0, a1);
  EXPECT_NE(a1, a2);
  // A second loader with the same seed, even visiting epochs out of order (a resumed run).
  EXPECT_EQ(order_of(run_epoch(b, 2)), a2);
  EXPECT_EQ(order_of(run_epoch(b, 0)), a0);
  EXPECT_EQ(order_of(run_epoch(a, 1)), a1);  // an epoch served again is the same
  // Another seed, another order.
  options.seed = 4;
  BatchLoader c(images, labels, options);
  EXPECT_NE(order_of(run_epoch(c, 0)), a0);
  // Without shuffling: file order every epoch.
  options.shuffle = false;
  BatchLoader plain(images, labels, options);
  std::vector<int64_t> all(40);
  for (int64_t i = 0; i < 40; ++i) all[i] = i;
  EXPECT_EQ(order_of(run_epoch(plain, 0)), all);
  EXPECT_EQ(order_of(run_epoch(plain, 5)), all);
}

TEST(BatchLoader, PrefetchingGivesTheSameBatches) {
  auto [images, labels] = indexed_source(30);
  std::vector<std::vector<Batch>> runs;
  for (int prefetch : {0, 1, 8}) {
    LoaderOptions options;
    options.batch_size = 4;
    options.shuffle = true;
    options.seed = 99;
    options.prefetch = prefetch;
    BatchLoader loader(images, labels, options);
    runs.push_back(run_epoch(loader, 1));
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    ASSERT_EQ(runs[r].size(), runs[0].size());
    for (size_t i = 0; i < runs[0].size(); ++i) {
      EXPECT_TRUE(torch::equal(runs[r][i].indices, runs[0][i].indices));
      EXPECT_TRUE(torch::equal(runs[r][i].inputs, runs[0][i].inputs));
      EXPECT_TRUE(torch::equal(runs[r][i].labels, runs[0][i].labels));
    }
  }
}

TEST(BatchLoader, RestartingMidEpochAndDroppingTheRemainder) {
  auto [images, labels] = indexed_source(10);
  LoaderOptions options;
  options.batch_size = 4;
  options.shuffle = true;
  options.seed = 1;
  options.drop_remainder = true;
  BatchLoader loader(images, labels, options);
  EXPECT_EQ(loader.num_batches(), 2);
  // Abandon epoch 0 after one batch; epoch 1 starts cleanly.
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());
  auto batches = run_epoch(loader, 1);
  ASSERT_EQ(batches.size(), 2u);
  auto order = order_of(batches);
  auto full = loader.epoch_order(1);
  EXPECT_EQ(order, std::vector<int64_t>(full.begin(), full.begin() + 8));
  // Before any epoch there is nothing to serve.
  BatchLoader idle(images, labels, options);
  EXPECT_FALSE(idle.next().has_value());
}

TEST(BatchLoader, FeatureSourcesComeOutAsTheyAre) {
  auto features = torch::randn({9, 6});
  auto labels = torch::arange(9, torch::kLong);
  LoaderOptions options;
  options.batch_size = 4;
  BatchLoader loader(features, labels, options);
  auto batches = run_epoch(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_TRUE(torch::equal(batches[0].inputs, features.narrow(0, 0, 4)));
  EXPECT_TRUE(torch::equal(batches[2].inputs, features.narrow(0, 8, 1)));
  EXPECT_TRUE(torch::equal(batches[2].labels, torch::tensor({8}, torch::kLong)));
}

TEST(BatchLoader, BadInputsAreErrors) {
  auto [images, labels] = indexed_source(5);
  LoaderOptions options;
  options.batch_size = 0;
  EXPECT_THROW(BatchLoader(images, labels, options), UsageError);
  options.batch_size = 2;
  EXPECT_THROW(BatchLoader(images, labels.narrow(0, 0, 4), options), Error);
}

}  // namespace
}  // namespace tabby
