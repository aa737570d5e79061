// inspect's statistics without the engine: counts per class and split over
// readable files only, each file probed once when splits overlap, formats by
// content, the most common sizes, unreadable files named, and the text and
// JSON forms.
#include <gtest/gtest.h>

#include "core/image_fixtures.h"
#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/dataset/inspect_report.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;

TEST(InspectReport, CountsReadableFilesOnceAcrossOverlappingSplits) {
  const fs::path dir = testing::scratch_dir("inspect_report_counts");
  const Image wide = fixtures::pattern_image(40, 20, 1), square = fixtures::pattern_image(30, 30, 2);
  testing::write_bytes(dir / "a1.png", encode_png(wide));
  testing::write_bytes(dir / "a2.jpg", fixtures::jpeg_rgb(wide));
  testing::write_bytes(dir / "b1.jpg", encode_png(square));  // a PNG named .jpg
  testing::write_bytes(dir / "b2.jpg", "not an image at all");
  Dataset train{{"a", "b"}, {{dir / "a1.png", 0}, {dir / "a2.jpg", 0}, {dir / "b1.jpg", 1}, {dir / "b2.jpg", 1}}, "train"};
  Dataset val{{"a", "b"}, {{dir / "a1.png", 0}, {dir / "b2.jpg", 1}}, "val"};  // overlaps train
  std::vector<char> readable;
  const InspectReport r = inspect_parts("data", {{"train", train}, {"validation", val}}, {}, &readable);

  ASSERT_EQ(r.splits.size(), 2u);
  EXPECT_EQ(r.splits[0].files, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r.splits[0].images, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(r.splits[1].images, (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(r.images, (std::vector<int64_t>{3, 1}));  // a file in two splits counts in both
  EXPECT_EQ(readable, (std::vector<char>{1, 1, 1, 0}));
  ASSERT_EQ(r.unreadable.size(), 1u);  // probed once, listed once
  EXPECT_EQ(r.unreadable[0].path, dir / "b2.jpg");
  EXPECT_EQ(r.formats.at("PNG"), 2);
  EXPECT_EQ(r.formats.at("JPEG"), 1);
  EXPECT_EQ(r.extension_mismatches, 1);
  ASSERT_EQ(r.top_sizes.size(), 2u);
  EXPECT_EQ(r.top_sizes[0].width, 40);  // two files of 40x20 before one of 30x30
  EXPECT_EQ(r.top_sizes[0].count, 2);
  EXPECT_EQ(r.min_width, 30);
  EXPECT_EQ(r.max_height, 30);
  EXPECT_EQ(r.baseline.class_index, 0);
  EXPECT_DOUBLE_EQ(r.baseline.accuracy, 0.75);

  const std::string text = r.to_text();
  EXPECT_NE(text.find("data: 4 images in 2 classes"), std::string::npos) << text;
  EXPECT_NE(text.find("unreadable files: 1"), std::string::npos) << text;
  EXPECT_NE(text.find("1 files have an extension that does not match"), std::string::npos) << text;
  const auto j = r.to_json();
  EXPECT_EQ(j["unreadable_count"], 1);
  EXPECT_EQ(j["files"], 6);
  EXPECT_EQ(j["splits"][1]["class_counts"]["a"], 1);
}

TEST(InspectReport, OnlyTheMostCommonSizesAreListed) {
  const fs::path dir = testing::scratch_dir("inspect_report_sizes");
  Dataset d;
  d.class_names = {"x"};
  for (int k = 0; k < 5; ++k) {
    const fs::path f = dir / ("img" + std::to_string(k) + ".png");
    testing::write_bytes(f, encode_png(fixtures::pattern_image(10 + k, 10, k)));
    d.samples.push_back({f, 0});
  }
  InspectOptions options;
  options.top_sizes = 2;
  options.verify = true;
  const InspectReport r = inspect_parts("d", {{"train", d}}, options);
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(r.distinct_sizes, 5);
  EXPECT_EQ(r.top_sizes.size(), 2u);
  EXPECT_EQ(r.other_sizes, 3);
}

}  // namespace
}  // namespace tabby
