// Encoding: PNG is lossless and well-formed, JPEG is close and well-formed,
// odd sizes work, bad input is an error rather than a crash.
#include "support/image_encode.h"

#include <gtest/gtest.h>

#include "image_fixtures.h"
#include "tabby/image/decode.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

using namespace fixtures;

TEST(EncodePng, LosslessForOddSizes) {
  for (auto [w, h] : {std::pair{1, 1}, {3, 5}, {257, 3}, {2, 300}}) {
    const Image source = pattern_image(w, h, w + h);
    const std::string png = encode_png(source);
    ASSERT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1A\n", 8));
    EXPECT_EQ(png.substr(png.size() - 8, 4), "IEND");
    const ImageInfo info = probe_image(bytes_of(png), png.size());
    EXPECT_EQ(info.width, w);
    EXPECT_EQ(info.height, h);
    EXPECT_EQ(static_cast<uint8_t>(png[24]), 8);  // bit depth
    EXPECT_EQ(static_cast<uint8_t>(png[25]), 2);  // colour type: RGB
    EXPECT_EQ(decode_bytes(png).pixels, source.pixels) << w << "x" << h;
  }
}

TEST(EncodePng, CompressesFlatImages) {
  Image flat(200, 200);
  std::fill(flat.pixels.begin(), flat.pixels.end(), 90);
  EXPECT_LT(encode_png(flat).size(), 2000u);  // 120,000 bytes of pixels
}

TEST(EncodeJpeg, CloseToTheSourceAndWellFormed) {
  const Image source = smooth_image(61, 47);
  const std::string jpeg = encode_jpeg(source);
  ASSERT_GE(jpeg.size(), 4u);
  EXPECT_EQ(jpeg.substr(0, 3), "\xFF\xD8\xFF");
  EXPECT_EQ(jpeg.substr(jpeg.size() - 2), "\xFF\xD9");
  const Image decoded = decode_bytes(jpeg);
  ASSERT_EQ(decoded.width, 61);
  ASSERT_EQ(decoded.height, 47);
  const PixelDiff d = compare(decoded, source);
  EXPECT_LT(d.mean, 3.0);
  EXPECT_LT(d.max, 40);
}

TEST(EncodeJpeg, QualityTradesSizeForFidelity) {
  const Image source = pattern_image(64, 64, 3);
  const std::string low = encode_jpeg(source, 10), high = encode_jpeg(source, 95);
  EXPECT_LT(low.size(), high.size());
  EXPECT_GT(compare(decode_bytes(low), source).mean, compare(decode_bytes(high), source).mean);
  // Out-of-range qualities are clamped, not refused.
  EXPECT_EQ(encode_jpeg(source, -5), encode_jpeg(source, 1));
  EXPECT_EQ(encode_jpeg(source, 500), encode_jpeg(source, 100));
}

TEST(EncodeJpeg, LargeImageGrowsTheBuffer) {
  const Image source = pattern_image(600, 400, 1);  // noisy blue channel: well over 64 KB
  const std::string jpeg = encode_jpeg(source, 100);
  EXPECT_GT(jpeg.size(), 64u * 1024);
  EXPECT_LT(compare(decode_bytes(jpeg), source).mean, 5.0);  // sharp sawtooth edges, 4:2:0 chroma
}

TEST(Encode, EmptyOrMalformedImagesAreErrors) {
  EXPECT_THROW(encode_png(Image()), Error);
  EXPECT_THROW(encode_jpeg(Image()), Error);
  Image lying(10, 10);
  lying.pixels.resize(7);
  EXPECT_THROW(encode_png(lying), Error);
  EXPECT_THROW(encode_jpeg(lying), Error);
}

}  // namespace
}  // namespace tabby
