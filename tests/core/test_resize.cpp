// Resizing and cropping against values computed by hand and by TensorFlow's
// formula (bilinear, half-pixel centres, no antialiasing), plus the edge cases
// (1xN, Nx1, identity) and Keras' crop_to_aspect_ratio window.
#include "tabby/image/resize.h"

#include <gtest/gtest.h>

#include <cmath>

#include "image_fixtures.h"
#include "support/test_support.h"
#include "tabby/image/decode.h"
#include "support/image_crop.h"
#include "support/image_encode.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

using fixtures::pattern_image;

// An image whose three channels all hold `values` (row-major).
Image grey_image(int width, int height, const std::vector<int>& values) {
  Image image(width, height);
  for (size_t i = 0; i < values.size(); ++i) {
    for (int c = 0; c < 3; ++c) image.pixels[i * 3 + c] = static_cast<uint8_t>(values[i]);
  }
  return image;
}

std::vector<int> channel(const Image& image, int c) {
  std::vector<int> out;
  for (size_t i = c; i < image.pixels.size(); i += 3) out.push_back(image.pixels[i]);
  return out;
}

// TensorFlow's ResizeBilinear (half_pixel_centers=True) for one channel,
// written out directly from its definition, in float like TensorFlow.
std::vector<int> reference_resize(const Image& src, int c, int out_w, int out_h) {
  auto sample = [&](int x, int y) { return static_cast<float>(src.pixels[(static_cast<size_t>(y) * src.width + x) * 3 + c]); };
  const float sx = static_cast<float>(src.width) / out_w, sy = static_cast<float>(src.height) / out_h;
  std::vector<int> out;
  for (int y = 0; y < out_h; ++y) {
    const float in_y = (y + 0.5f) * sy - 0.5f;
    const int y0 = std::max(0, static_cast<int>(std::floor(in_y)));
    const int y1 = std::min(src.height - 1, static_cast<int>(std::ceil(in_y)));
    const float fy = in_y - std::floor(in_y);
    for (int x = 0; x < out_w; ++x) {
      const float in_x = (x + 0.5f) * sx - 0.5f;
      const int x0 = std::max(0, static_cast<int>(std::floor(in_x)));
      const int x1 = std::min(src.width - 1, static_cast<int>(std::ceil(in_x)));
      const float fx = in_x - std::floor(in_x);
      const float top = sample(x0, y0) + (sample(x1, y0) - sample(x0, y0)) * fx;
      const float bottom = sample(x0, y1) + (sample(x1, y1) - sample(x0, y1)) * fx;
      out.push_back(static_cast<int>(std::floor(top + (bottom - top) * fy + 0.5f)));
    }
  }
  return out;
}

TEST(Resize, TwoByTwoToFourByFourByHand) {
  // Output centres map to source coordinates -0.25, 0.25, 0.75, 1.25 on each
  // axis: the outer ones clamp to the edge pixels, the inner ones blend 3:1.
  const Image src = grey_image(2, 2, {0, 100, 200, 40});
  const Image out = resize_bilinear(src, 4, 4);
  EXPECT_EQ(channel(out, 0), (std::vector<int>{0, 25, 75, 100,  //
                                               50, 59, 76, 85,  // 58.75, 76.25
                                               150, 126, 79, 55,  // 126.25, 78.75
                                               200, 160, 80, 40}));
  EXPECT_EQ(channel(out, 1), channel(out, 0));
  EXPECT_EQ(channel(out, 2), channel(out, 0));
}

TEST(Resize, MatchesTheFormulaOnRandomImages) {
  const Image src = pattern_image(13, 7, 3);
  for (auto [w, h] : {std::pair{4, 4}, {26, 14}, {5, 11}, {13, 3}, {40, 1}, {1, 40}, {7, 13}}) {
    const Image out = resize_bilinear(src, w, h);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    for (int c = 0; c < 3; ++c) EXPECT_EQ(channel(out, c), reference_resize(src, c, w, h)) << w << "x" << h;
  }
}

TEST(Resize, IdentityKeepsPixels) {
  const Image src = pattern_image(17, 9, 8);
  EXPECT_EQ(resize_bilinear(src, 17, 9).pixels, src.pixels);
}

TEST(Resize, DownscaleByTwoAveragesTwoByTwoBlocks) {
  // Centres at 0.5 and 2.5: half-way between pixel pairs.
  const Image src = grey_image(4, 4, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150});
  EXPECT_EQ(channel(resize_bilinear(src, 2, 2), 0), (std::vector<int>{25, 45, 105, 125}));
}

TEST(Resize, DownscaleByThreeSamplesWithoutAntialiasing) {
  // Centres at exactly 1 and 4: single source pixels, the rest ignored.
  std::vector<int> values;
  for (int i = 0; i < 36; ++i) values.push_back(i * 7);
  const Image src = grey_image(6, 6, values);
  EXPECT_EQ(channel(resize_bilinear(src, 2, 2), 0),
            (std::vector<int>{values[1 * 6 + 1], values[1 * 6 + 4], values[4 * 6 + 1], values[4 * 6 + 4]}));
}

TEST(Resize, SingleRowsAndColumns) {
  const Image row = grey_image(5, 1, {0, 50, 100, 150, 200});
  Image out = resize_bilinear(row, 3, 1);
  // Centres at 1/6*... : (x + 0.5) * 5/3 - 0.5 = 0.333, 2, 3.667.
  EXPECT_EQ(channel(out, 0), (std::vector<int>{17, 100, 183}));
  out = resize_bilinear(row, 5, 3);  // taller: every row the same
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 5; ++x) EXPECT_EQ(out.row(y)[x * 3], row.pixels[x * 3]);
  }

  const Image column = grey_image(1, 5, {0, 50, 100, 150, 200});
  EXPECT_EQ(channel(resize_bilinear(column, 1, 3), 0), (std::vector<int>{17, 100, 183}));

  const Image dot = grey_image(1, 1, {77});
  const Image big = resize_bilinear(dot, 4, 3);
  for (uint8_t v : big.pixels) EXPECT_EQ(v, 77);
  EXPECT_EQ(channel(resize_bilinear(big, 1, 1), 0), (std::vector<int>{77}));
}

TEST(Resize, IntoAndRegionAgreeWithTheWholeImageVersions) {
  const Image src = pattern_image(30, 20, 1);
  std::vector<uint8_t> into(12 * 8 * 3);
  resize_bilinear_into(src, 12, 8, into.data());
  EXPECT_EQ(into, resize_bilinear(src, 12, 8).pixels);

  const CropBox box = center_crop_box(30, 20, 1, 1);
  std::vector<uint8_t> region(9 * 9 * 3);
  resize_bilinear_region_into(src, box, 9, 9, region.data());
  EXPECT_EQ(region, resize_bilinear(testing::center_crop_to_aspect(src, 1, 1), 9, 9).pixels);
}

TEST(Resize, BadArgumentsAreErrors) {
  const Image src = pattern_image(4, 4);
  EXPECT_THROW(resize_bilinear(src, 0, 4), Error);
  EXPECT_THROW(resize_bilinear(src, 4, -1), Error);
  EXPECT_THROW(resize_bilinear(Image(), 4, 4), Error);
  std::vector<uint8_t> dst(4 * 4 * 3);
  EXPECT_THROW(resize_bilinear_region_into(src, CropBox{2, 2, 3, 3}, 4, 4, dst.data()), Error);
  EXPECT_THROW(center_crop_box(4, 4, 0, 1), Error);
}

TEST(Crop, KeepsTheCentredWindowOfTheTargetAspect) {
  auto box_of = [](int w, int h, int aw, int ah) {
    const CropBox b = center_crop_box(w, h, aw, ah);
    return std::vector<int>{b.x, b.y, b.width, b.height};
  };
  EXPECT_EQ(box_of(200, 100, 1, 1), (std::vector<int>{50, 0, 100, 100}));
  EXPECT_EQ(box_of(100, 200, 1, 1), (std::vector<int>{0, 50, 100, 100}));
  EXPECT_EQ(box_of(200, 100, 2, 1), (std::vector<int>{0, 0, 200, 100}));
  EXPECT_EQ(box_of(200, 100, 150, 150), (std::vector<int>{50, 0, 100, 100}));
  EXPECT_EQ(box_of(7, 3, 1, 1), (std::vector<int>{2, 0, 3, 3}));        // (7 - 3) / 2
  EXPECT_EQ(box_of(500, 375, 16, 9), (std::vector<int>{0, 47, 500, 281}));  // 281.25 truncated
  EXPECT_EQ(box_of(1, 100, 100, 1), (std::vector<int>{0, 49, 1, 1}));  // never empty
}

TEST(LoadResized, PngAndBmpGoThroughTheSamePath) {
  const std::filesystem::path dir = testing::scratch_dir("resize_load");
  const Image src = pattern_image(40, 20, 5);
  testing::write_bytes(dir / "a.png", encode_png(src));
  std::vector<uint8_t> dst(10 * 10 * 3);
  load_image_resized(dir / "a.png", 10, 10, false, dst.data());
  EXPECT_EQ(dst, resize_bilinear(src, 10, 10).pixels);
  load_image_resized(dir / "a.png", 10, 10, true, dst.data());
  EXPECT_EQ(dst, resize_bilinear(testing::center_crop_to_aspect(src, 1, 1), 10, 10).pixels);
  testing::write_bytes(dir / "bad.png", "not really");
  EXPECT_THROW(load_image_resized(dir / "bad.png", 10, 10, false, dst.data()), DecodeError);
}

}  // namespace
}  // namespace tabby
