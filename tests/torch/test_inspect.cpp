// `tabby inspect`: counts per class and split, baselines, image sizes,
// formats and unreadable files on a tiny dataset the test writes (with broken
// files of several kinds); the sample grid puts each class in its own row; the
// augmentation preview; augmentation specs; the CLI; and, with the shared
// data, the PetImages numbers the issue names.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include "support/test_support.h"
#include "tabby/api/inspect_job.h"
#include "tabby/image/decode.h"
#include "support/image_encode.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::write_bytes;

// A flat colour with a little noise (so JPEG has something to encode).
Image coloured(int width, int height, int r, int g, int b, int seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::uniform_int_distribution<int> noise(-8, 8);
  Image image(width, height);
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = static_cast<uint8_t>(std::clamp(r + noise(rng), 0, 255));
    image.pixels[i + 1] = static_cast<uint8_t>(std::clamp(g + noise(rng), 0, 255));
    image.pixels[i + 2] = static_cast<uint8_t>(std::clamp(b + noise(rng), 0, 255));
  }
  return image;
}

// A JPEG cut off a few bytes into its scan data: the header probes fine, the
// pixels do not decode.
std::string truncated_jpeg(const Image& image) {
  const std::string full = encode_jpeg(image, 90);
  const size_t sos = full.find("\xFF\xDA");
  EXPECT_NE(sos, std::string::npos);
  return full.substr(0, sos + 20);
}

// root/train/{cat,dog}, root/validation/{cat,dog}; cats are red, dogs blue.
//   train/cat: 3 JPEG 40x30 + 1 PNG 20x20 + truncated JPEG 40x30 + text named
//              .jpg + empty .jpg
//   train/dog: 4 JPEG 40x30 + 1 PNG 20x20 named .jpg
//   validation: 2 cats, 3 dogs, JPEG 40x30
fs::path make_dataset(const std::string& name) {
  const fs::path root = testing::scratch_dir(name);
  int seed = 0;
  auto red = [&](int w, int h) { return coloured(w, h, 220, 25, 25, ++seed); };
  auto blue = [&](int w, int h) { return coloured(w, h, 25, 25, 220, ++seed); };
  for (int i = 0; i < 3; ++i) write_bytes(root / "train/cat" / fmt::format("c{}.jpg", i), encode_jpeg(red(40, 30)));
  write_bytes(root / "train/cat/c_png.png", encode_png(red(20, 20)));
  write_bytes(root / "train/cat/truncated.jpg", truncated_jpeg(red(40, 30)));
  write_bytes(root / "train/cat/notes.jpg", "these are not pixels, just a text file with the wrong name\n");
  write_bytes(root / "train/cat/empty.jpg", "");
  for (int i = 0; i < 4; ++i) write_bytes(root / "train/dog" / fmt::format("d{}.jpg", i), encode_jpeg(blue(40, 30)));
  write_bytes(root / "train/dog/really_png.jpg", encode_png(blue(20, 20)));
  for (int i = 0; i < 2; ++i) write_bytes(root / "validation/cat" / fmt::format("v{}.jpg", i), encode_jpeg(red(40, 30)));
  for (int i = 0; i < 3; ++i) write_bytes(root / "validation/dog" / fmt::format("w{}.jpg", i), encode_jpeg(blue(40, 30)));
  return root;
}

TEST(Inspect, CountsSizesFormatsAndUnreadableFilesPerSplit) {
  const fs::path root = make_dataset("inspect_counts");
  InspectJob job;
  job.data.data = root.string();
  job.top_sizes = 1;
  InspectReport r = run_inspect_job(job);

  ASSERT_EQ(r.class_names, (std::vector<std::string>{"cat", "dog"}));
  ASSERT_EQ(r.splits.size(), 2u);
  EXPECT_EQ(r.splits[0].name, "train");
  EXPECT_EQ(r.splits[1].name, "validation");
  // Headers only: the truncated JPEG still counts as an image.
  EXPECT_EQ(r.splits[0].files, (std::vector<int64_t>{7, 5}));
  EXPECT_EQ(r.splits[0].images, (std::vector<int64_t>{5, 5}));
  EXPECT_EQ(r.splits[1].images, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.images, (std::vector<int64_t>{7, 8}));
  // Ties go to the first class; the baseline is over readable images.
  EXPECT_EQ(r.splits[0].baseline.class_index, 0);
  EXPECT_DOUBLE_EQ(r.splits[0].baseline.accuracy, 0.5);
  EXPECT_EQ(r.splits[1].baseline.class_index, 1);
  EXPECT_DOUBLE_EQ(r.splits[1].baseline.accuracy, 0.6);
  EXPECT_EQ(r.baseline.class_index, 1);
  EXPECT_DOUBLE_EQ(r.baseline.accuracy, 8.0 / 15.0);

  ASSERT_EQ(r.top_sizes.size(), 1u);
  EXPECT_EQ(r.top_sizes[0].width, 40);
  EXPECT_EQ(r.top_sizes[0].height, 30);
  EXPECT_EQ(r.top_sizes[0].count, 13);
  EXPECT_EQ(r.other_sizes, 2);
  EXPECT_EQ(r.distinct_sizes, 2);
  EXPECT_EQ(r.min_width, 20);
  EXPECT_EQ(r.max_width, 40);
  EXPECT_EQ(r.formats.at("JPEG"), 13);
  EXPECT_EQ(r.formats.at("PNG"), 2);
  EXPECT_EQ(r.extension_mismatches, 1);

  ASSERT_EQ(r.unreadable.size(), 2u);
  EXPECT_EQ(r.unreadable[0].path.filename(), "empty.jpg");
  EXPECT_EQ(r.unreadable[1].path.filename(), "notes.jpg");
  for (const auto& u : r.unreadable) EXPECT_FALSE(u.reason.empty());

  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j["class_counts"]["cat"], 7);
  EXPECT_EQ(j["class_counts"]["dog"], 8);
  EXPECT_EQ(j["images"], 15);
  EXPECT_EQ(j["files"], 17);
  EXPECT_EQ(j["baseline"]["class"], "dog");
  EXPECT_EQ(j["splits"][1]["class_counts"]["dog"], 3);
  EXPECT_EQ(j["image_sizes"]["other"], 2);
  EXPECT_EQ(j["unreadable_count"], 2);
  EXPECT_EQ(j["unreadable"][1]["file"], (root / "train/cat/notes.jpg").string());

  const std::string text = r.to_text();
  EXPECT_NE(text.find("40x30"), std::string::npos) << text;
  EXPECT_NE(text.find("notes.jpg"), std::string::npos) << text;
  EXPECT_NE(text.find("0.6000 (always 'dog')"), std::string::npos) << text;
}

TEST(Inspect, VerifyDecodesEveryFileAndFindsBrokenPixelData) {
  const fs::path root = make_dataset("inspect_verify");
  InspectJob job;
  job.data.data = (root / "train").string();  // one split: the class folders themselves
  job.verify = true;
  InspectReport r = run_inspect_job(job);
  ASSERT_EQ(r.splits.size(), 1u);
  EXPECT_EQ(r.splits[0].images, (std::vector<int64_t>{4, 5}));
  ASSERT_EQ(r.unreadable.size(), 3u);
  EXPECT_EQ(r.unreadable[2].path.filename(), "truncated.jpg");
  EXPECT_TRUE(r.verified);
}

TEST(Inspect, SplitSettingsShowTheSplitsTrainingWouldUse) {
  const fs::path root = make_dataset("inspect_slices");
  InspectJob job;
  job.data.data = root.string();
  job.data.split = "train[:50%]";
  job.data.val_split = "train[50%:]";
  InspectReport r = run_inspect_job(job);
  ASSERT_EQ(r.splits.size(), 2u);
  EXPECT_EQ(r.splits[0].name, "train");
  EXPECT_EQ(r.splits[1].name, "validation");
  // Disjoint halves of the 12 train files.
  EXPECT_EQ(r.splits[0].total_files() + r.splits[1].total_files(), 12);
  EXPECT_EQ(r.splits[0].total_files(), 6);
}

// The rows of pixels where a colour shows up in an image.
struct RowRange {
  int first = -1, last = -1;
};
RowRange rows_with(const Image& image, bool (*match)(const uint8_t*)) {
  RowRange range;
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* row = image.row(y);
    int hits = 0;
    for (int x = 0; x < image.width; ++x) hits += match(row + 3 * x) ? 1 : 0;
    if (hits >= 5) {
      if (range.first < 0) range.first = y;
      range.last = y;
    }
  }
  return range;
}

TEST(Inspect, GridShowsEachClassInItsOwnRow) {
  const fs::path root = make_dataset("inspect_grid");
  const fs::path out = testing::scratch_dir("inspect_grid_out");
  InspectJob job;
  job.data.data = root.string();
  job.grid = out / "grid.png";
  job.samples = 2;
  InspectReport r = run_inspect_job(job);
  ASSERT_EQ(r.written.size(), 1u);
  const Image grid = decode_image_file(out / "grid.png");
  EXPECT_GT(grid.width, 2 * 100);
  auto red = [](const uint8_t* p) { return p[0] > 150 && p[1] < 90 && p[2] < 90; };
  auto blue = [](const uint8_t* p) { return p[2] > 150 && p[0] < 90 && p[1] < 90; };
  const RowRange cats = rows_with(grid, red), dogs = rows_with(grid, blue);
  ASSERT_GE(cats.first, 0) << "no cat (red) images in the grid";
  ASSERT_GE(dogs.first, 0) << "no dog (blue) images in the grid";
  EXPECT_LT(cats.last, dogs.first) << "the cat row must come first and hold only cats";

  // SVG from the same code.
  job.grid = out / "grid.svg";
  run_inspect_job(job);
  EXPECT_NE(read_file(out / "grid.svg").find("<svg"), std::string::npos);

  // Bad requests fail before any file is read.
  job.samples = 0;
  EXPECT_THROW(run_inspect_job(job), UsageError);
  job.samples = 2;
  job.grid = out / "grid.gif";
  EXPECT_THROW(run_inspect_job(job), Error);
}

TEST(Inspect, AugmentationPreview) {
  const fs::path root = make_dataset("inspect_preview");
  const fs::path out = testing::scratch_dir("inspect_preview_out");
  InspectJob job;
  job.data.data = root.string();
  job.preview = out / "preview.png";
  job.augment = "flip,rotation=0.1,zoom=0.2";
  job.preview_images = 2;
  job.preview_versions = 3;
  job.image_height = job.image_width = 32;
  run_inspect_job(job);
  const Image preview = decode_image_file(out / "preview.png");
  // Two rows of 1 + 3 images: wider than tall.
  EXPECT_GT(preview.width, preview.height);

  // The torchvision-style augmentations too.
  job.augment = "crop=0.5,jitter=0.4,0.4,0.4,0.1,trivial,randaugment=2,9";
  job.preview = out / "modern.png";
  run_inspect_job(job);
  EXPECT_EQ(decode_image_file(out / "modern.png").height, preview.height);

  // The augmentation layers of a model, at its size.
  job.augment.clear();
  job.model = "tutorial-cnn-flip-rotate";
  job.preview = out / "model_preview.png";
  run_inspect_job(job);
  EXPECT_GT(decode_image_file(out / "model_preview.png").width, 0);

  job.model = "tutorial-cnn";  // no augmentation layers
  EXPECT_THROW(run_inspect_job(job), UsageError);
  job.model.clear();
  EXPECT_THROW(run_inspect_job(job), UsageError);  // nothing to preview
}

TEST(Inspect, AugmentSpecs) {
  auto layers = parse_augment_spec("flip");
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_EQ(layers[0].type, "RandomFlip");
  EXPECT_EQ(layers[0].params["mode"], "horizontal");

  layers = parse_augment_spec(" flip=vertical , rotation=0.2,zoom=0.1,translation=0.1,contrast=0.3");
  ASSERT_EQ(layers.size(), 5u);
  EXPECT_EQ(layers[0].params["mode"], "vertical");
  EXPECT_EQ(layers[1].type, "RandomRotation");
  EXPECT_DOUBLE_EQ(layers[1].params["factor"].get<double>(), 0.2);
  EXPECT_EQ(layers[2].type, "RandomZoom");
  EXPECT_EQ(layers[3].type, "RandomTranslation");
  EXPECT_EQ(layers[4].type, "RandomContrast");

  for (const char* bad : {"", "spin", "rotation", "rotation=2", "rotation=abc", "flip=sideways", "flip,,zoom=0.1",
                          "zoom=-0.1"}) {
    EXPECT_THROW(parse_augment_spec(bad), UsageError) << bad;
  }
}

TEST(Inspect, CommandLine) {
  const fs::path root = make_dataset("inspect_cli");
  auto r = testing::run_tabby({"inspect", root.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["class_counts"]["cat"], 7);
  EXPECT_EQ(j["unreadable_count"], 2);

  r = testing::run_tabby({"inspect", root.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("majority-class baseline"), std::string::npos) << r.out;

  r = testing::run_tabby({"inspect", (root / "missing").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;

  r = testing::run_tabby({"inspect", root.string(), "--augment-preview", (root / "p.png").string(), "--augment",
                          "spin=3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown augmentation 'spin'"), std::string::npos) << r.err;

  r = testing::run_tabby({"inspect", root.string(), "--per-class", "3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--grid"), std::string::npos) << r.err;
}

// The numbers: PetImages has 4,499 cats and 4,500 dogs.
TEST(Inspect, PetImagesCountsAndBaseline) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path pets = shared / "datasets/pet_images/PetImages";
  if (!fs::is_directory(pets)) GTEST_SKIP() << "no " << pets;
  InspectJob job;
  job.data.data = pets.string();
  InspectReport r = run_inspect_job(job);
  ASSERT_EQ(r.class_names, (std::vector<std::string>{"Cat", "Dog"}));
  EXPECT_EQ(r.images, (std::vector<int64_t>{4499, 4500}));
  EXPECT_EQ(r.baseline.class_index, 1);
  EXPECT_NEAR(r.baseline.accuracy, 0.5001, 5e-5);
}

}  // namespace
}  // namespace tabby
