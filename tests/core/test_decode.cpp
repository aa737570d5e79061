// Decoding: every format and variant the decoders promise (round trips
// against images the tests write), every kind of broken file (each must be a
// DecodeError, never a crash), size limits, DCT downscaling, and probing.
#include "tabby/image/decode.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <random>
#include <thread>

#include "image_fixtures.h"
#include "support/test_support.h"
#include "support/image_crop.h"
#include "support/image_encode.h"
#include "tabby/image/resize.h"

namespace tabby {
namespace {

using namespace fixtures;
namespace fs = std::filesystem;

// ---- sniffing ---------------------------------------------------------------

using namespace std::string_literals;  // "...\0..."s keeps embedded zero bytes

ImageFormat sniff(const std::string& s) { return sniff_format(bytes_of(s), s.size()); }

uint32_t load_be32_for_test(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
         uint32_t(uint8_t(s[at + 3]));
}

TEST(Sniff, RecognisesMagicBytes) {
  EXPECT_EQ(sniff(std::string("\xFF\xD8\xFF\xE0", 4)), ImageFormat::Jpeg);
  EXPECT_EQ(sniff("\x89PNG\r\n\x1A\n...."), ImageFormat::Png);
  EXPECT_EQ(sniff("GIF89a......"), ImageFormat::Gif);
  EXPECT_EQ(sniff("GIF87a......"), ImageFormat::Gif);
  EXPECT_EQ(sniff(std::string("BM\0\0\0\0\0\0\0\0\0\0\0\0\x28\0\0\0", 18)), ImageFormat::Bmp);
  EXPECT_EQ(sniff("RIFF\x10\0\0\0WEBPVP8 "s), ImageFormat::Webp);
  EXPECT_EQ(sniff(std::string("II*\0\x08\0\0\0", 8)), ImageFormat::Tiff);
  EXPECT_EQ(sniff(std::string("MM\0*\0\0\0\x08", 8)), ImageFormat::Tiff);
  EXPECT_EQ(sniff(std::string("\0\0\0\x18" "ftypheic\0\0\0\0", 16)), ImageFormat::Heic);
  EXPECT_EQ(sniff(std::string("\0\0\0\x1C" "ftypavif\0\0\0\0", 16)), ImageFormat::Avif);
}

TEST(Sniff, DoesNotGuessFromWeakOrMissingSignatures) {
  EXPECT_EQ(sniff("BMW is a car, not a bitmap."), ImageFormat::Unknown);  // "BM" alone is not enough
  EXPECT_EQ(sniff("hello world"), ImageFormat::Unknown);
  EXPECT_EQ(sniff(std::string("\xFF\xD8", 2)), ImageFormat::Unknown);
  EXPECT_EQ(sniff(std::string("\0\0\0\x18" "ftypisom\0\0\0\0", 16)), ImageFormat::Unknown);  // MP4 video
  EXPECT_EQ(sniff_format(nullptr, 10), ImageFormat::Unknown);
  EXPECT_EQ(sniff(""), ImageFormat::Unknown);
}

TEST(Sniff, FormatNames) {
  EXPECT_STREQ(format_name(ImageFormat::Jpeg), "JPEG");
  EXPECT_STREQ(format_name(ImageFormat::Png), "PNG");
  EXPECT_STREQ(format_name(ImageFormat::Bmp), "BMP");
  EXPECT_STREQ(format_name(ImageFormat::Gif), "GIF");
  EXPECT_STREQ(format_name(ImageFormat::Webp), "WebP");
  EXPECT_STREQ(format_name(ImageFormat::Unknown), "unknown");
  EXPECT_TRUE(is_decodable(ImageFormat::Jpeg));
  EXPECT_FALSE(is_decodable(ImageFormat::Webp));
}

// ---- PNG ---------------------------------------------------------------------

TEST(Png, RgbRoundTripIsExact) {
  const Image source = pattern_image(37, 23, 4);
  const Image decoded = decode_bytes(encode_png(source));
  EXPECT_EQ(decoded.width, 37);
  EXPECT_EQ(decoded.height, 23);
  EXPECT_EQ(decoded.pixels, source.pixels);
}

TEST(Png, GreyBecomesRgb) {
  PngSpec spec;
  spec.width = 5;
  spec.height = 3;
  spec.color_type = PNG_COLOR_TYPE_GRAY;
  for (int i = 0; i < 15; ++i) spec.rows.push_back(static_cast<uint8_t>(i * 17));
  const Image decoded = decode_bytes(png_bytes(spec));
  ASSERT_EQ(decoded.width, 5);
  for (int i = 0; i < 15; ++i) {
    for (int c = 0; c < 3; ++c) EXPECT_EQ(decoded.pixels[i * 3 + c], i * 17);
  }
}

TEST(Png, OneBitGreyExpandsToFullRange) {
  PngSpec spec;
  spec.width = 11;
  spec.height = 2;
  spec.color_type = PNG_COLOR_TYPE_GRAY;
  spec.bit_depth = 1;
  std::vector<uint8_t> bits;
  for (int i = 0; i < 22; ++i) bits.push_back(i % 3 == 0);
  spec.rows = pack_rows(bits, 11, 2, 1);
  const Image decoded = decode_bytes(png_bytes(spec));
  for (int i = 0; i < 22; ++i) EXPECT_EQ(decoded.pixels[i * 3 + 1], bits[i] ? 255 : 0) << i;
}

TEST(Png, PaletteWithTransparencyDropsAlpha) {
  PngSpec spec;
  spec.width = 7;
  spec.height = 4;
  spec.color_type = PNG_COLOR_TYPE_PALETTE;
  spec.palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};
  spec.transparency = {0, 128};  // entries 0 and 1 (semi-)transparent: colour kept anyway
  std::vector<uint8_t> indices;
  for (int i = 0; i < 28; ++i) indices.push_back(static_cast<uint8_t>(i % 4));
  spec.rows = indices;
  const Image decoded = decode_bytes(png_bytes(spec));
  for (int i = 0; i < 28; ++i) {
    const png_color& c = spec.palette[indices[i]];
    EXPECT_EQ(decoded.pixels[i * 3 + 0], c.red);
    EXPECT_EQ(decoded.pixels[i * 3 + 1], c.green);
    EXPECT_EQ(decoded.pixels[i * 3 + 2], c.blue);
  }
}

TEST(Png, FourBitPalette) {
  PngSpec spec;
  spec.width = 9;
  spec.height = 3;
  spec.color_type = PNG_COLOR_TYPE_PALETTE;
  spec.bit_depth = 4;
  for (int i = 0; i < 16; ++i) {
    spec.palette.push_back({static_cast<png_byte>(i * 16), static_cast<png_byte>(255 - i), static_cast<png_byte>(i)});
  }
  std::vector<uint8_t> indices;
  for (int i = 0; i < 27; ++i) indices.push_back(static_cast<uint8_t>((i * 7) % 16));
  spec.rows = pack_rows(indices, 9, 3, 4);
  const Image decoded = decode_bytes(png_bytes(spec));
  for (int i = 0; i < 27; ++i) {
    EXPECT_EQ(decoded.pixels[i * 3 + 0], spec.palette[indices[i]].red);
    EXPECT_EQ(decoded.pixels[i * 3 + 1], spec.palette[indices[i]].green);
  }
}

TEST(Png, RgbaAndGreyAlphaDropAlphaWithoutCompositing) {
  PngSpec rgba;
  rgba.width = 4;
  rgba.height = 2;
  rgba.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
  for (int i = 0; i < 8; ++i) rgba.rows.insert(rgba.rows.end(), {uint8_t(i * 30), uint8_t(200 - i), 77, uint8_t(i * 36)});
  Image decoded = decode_bytes(png_bytes(rgba));
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(decoded.pixels[i * 3 + 0], i * 30);  // even where alpha is 0
    EXPECT_EQ(decoded.pixels[i * 3 + 1], 200 - i);
    EXPECT_EQ(decoded.pixels[i * 3 + 2], 77);
  }

  PngSpec grey_alpha;
  grey_alpha.width = 3;
  grey_alpha.height = 1;
  grey_alpha.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  grey_alpha.rows = {10, 0, 120, 255, 250, 7};
  decoded = decode_bytes(png_bytes(grey_alpha));
  EXPECT_EQ(decoded.pixels, (std::vector<uint8_t>{10, 10, 10, 120, 120, 120, 250, 250, 250}));
}

TEST(Png, SixteenBitKeepsHighByte) {
  PngSpec spec;
  spec.width = 6;
  spec.height = 2;
  spec.color_type = PNG_COLOR_TYPE_RGB;
  spec.bit_depth = 16;
  std::vector<uint8_t> expected;
  for (int i = 0; i < 36; ++i) {
    const uint8_t high = static_cast<uint8_t>(i * 7), low = static_cast<uint8_t>(255 - i * 3);
    spec.rows.insert(spec.rows.end(), {high, low});  // big-endian samples
    expected.push_back(high);
  }
  EXPECT_EQ(decode_bytes(png_bytes(spec)).pixels, expected);
}

TEST(Png, SixteenBitGreyWithAlpha) {
  PngSpec spec;
  spec.width = 2;
  spec.height = 1;
  spec.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  spec.bit_depth = 16;
  spec.rows = {0x12, 0x34, 0xFF, 0xFF, 0xAB, 0xCD, 0x00, 0x00};
  EXPECT_EQ(decode_bytes(png_bytes(spec)).pixels, (std::vector<uint8_t>{0x12, 0x12, 0x12, 0xAB, 0xAB, 0xAB}));
}

TEST(Png, InterlacedIsExact) {
  const Image source = pattern_image(19, 13, 2);
  PngSpec spec;
  spec.width = 19;
  spec.height = 13;
  spec.interlaced = true;
  spec.rows = source.pixels;
  const std::string bytes = png_bytes(spec);
  ASSERT_EQ(static_cast<uint8_t>(bytes[28]), 1);  // IHDR interlace method: Adam7
  EXPECT_EQ(decode_bytes(bytes).pixels, source.pixels);
}

TEST(Png, TruncatedIsRefused) {
  const std::string png = encode_png(pattern_image(64, 48, 1));
  for (size_t keep : {size_t(8), size_t(20), size_t(33), png.size() / 2, png.size() - 20}) {
    const std::string reason = decode_failure(png.substr(0, keep));
    EXPECT_TRUE(contains(reason, "truncated") || contains(reason, "PNG")) << keep << ": " << reason;
  }
  EXPECT_TRUE(contains(decode_failure(png.substr(0, png.size() / 2)), "truncated PNG data"));
}

TEST(Png, BadCrcOrDamagedDataIsRefused) {
  const std::string png = encode_png(pattern_image(16, 16, 1));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  const size_t idat_length = load_be32_for_test(png, idat - 4);

  std::string bad_header_crc = png;
  bad_header_crc[29] = static_cast<char>(bad_header_crc[29] ^ 0x01);  // IHDR's CRC
  EXPECT_TRUE(contains(decode_failure(bad_header_crc), "CRC")) << decode_failure(bad_header_crc);

  std::string bad_data_crc = png;
  bad_data_crc[idat + 4 + idat_length] = static_cast<char>(bad_data_crc[idat + 4 + idat_length] ^ 0x01);
  EXPECT_TRUE(contains(decode_failure(bad_data_crc), "CRC")) << decode_failure(bad_data_crc);

  std::string bad_data = png;  // zlib notices before the CRC is checked
  bad_data[idat + 10] = static_cast<char>(bad_data[idat + 10] ^ 0x55);
  EXPECT_TRUE(contains(decode_failure(bad_data), "PNG data")) << decode_failure(bad_data);
}

// Rewrites the IHDR size fields and fixes the chunk's CRC.
std::string png_with_size(std::string png, uint32_t width, uint32_t height) {
  for (int i = 0; i < 4; ++i) {
    png[16 + i] = static_cast<char>((width >> (24 - 8 * i)) & 0xFF);
    png[20 + i] = static_cast<char>((height >> (24 - 8 * i)) & 0xFF);
  }
  const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17);
  for (int i = 0; i < 4; ++i) png[29 + i] = static_cast<char>((crc >> (24 - 8 * i)) & 0xFF);
  return png;
}

TEST(Png, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  const std::string png = png_with_size(encode_png(pattern_image(8, 8)), 60000, 60000);
  const std::string reason = decode_failure(png);
  EXPECT_TRUE(contains(reason, "too large")) << reason;
  EXPECT_TRUE(contains(reason, "60000x60000")) << reason;
}

TEST(Png, NamedJpgDecodesAsPng) {
  const fs::path dir = testing::scratch_dir("decode_png_named_jpg");
  const Image source = pattern_image(12, 9, 3);
  testing::write_bytes(dir / "photo.jpg", encode_png(source));
  EXPECT_EQ(decode_image_file(dir / "photo.jpg").pixels, source.pixels);
  EXPECT_EQ(probe_image_file(dir / "photo.jpg").format, ImageFormat::Png);
}

// ---- JPEG --------------------------------------------------------------------

TEST(Jpeg, RgbRoundTripWithinTolerance) {
  const Image source = smooth_image(67, 45);
  const Image decoded = decode_bytes(jpeg_rgb(source, 95));
  const PixelDiff d = compare(decoded, source);
  EXPECT_LT(d.mean, 2.0);
  EXPECT_LT(d.max, 24);
}

TEST(Jpeg, TabbyEncoderRoundTrip) {
  const Image source = smooth_image(40, 30);
  const PixelDiff d = compare(decode_bytes(encode_jpeg(source, 90)), source);
  EXPECT_LT(d.mean, 3.0);
}

TEST(Jpeg, GreyBecomesRgb) {
  JpegSpec spec;
  spec.width = 32;
  spec.height = 20;
  spec.components = 1;
  spec.in_color_space = JCS_GRAYSCALE;
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 32; ++x) spec.samples.push_back(static_cast<uint8_t>(x * 6 + y));
  const Image decoded = decode_bytes(jpeg_bytes(spec));
  ASSERT_EQ(decoded.width, 32);
  ASSERT_EQ(decoded.height, 20);
  int max_diff = 0;
  for (size_t i = 0; i < spec.samples.size(); ++i) {
    EXPECT_EQ(decoded.pixels[i * 3], decoded.pixels[i * 3 + 1]);
    EXPECT_EQ(decoded.pixels[i * 3], decoded.pixels[i * 3 + 2]);
    max_diff = std::max(max_diff, std::abs(decoded.pixels[i * 3] - spec.samples[i]));
  }
  EXPECT_LE(max_diff, 6);
}

// CMYK as Adobe writes it (inverted: 255 = no ink). With no black ink
// (K = 255), C/M/Y hold R/G/B directly; K scales all three.
JpegSpec cmyk_spec(const Image& rgb, uint8_t k) {
  JpegSpec spec;
  spec.width = rgb.width;
  spec.height = rgb.height;
  spec.components = 4;
  spec.in_color_space = JCS_CMYK;
  spec.quality = 98;
  for (size_t i = 0; i < rgb.pixels.size(); i += 3) {
    spec.samples.insert(spec.samples.end(), {rgb.pixels[i], rgb.pixels[i + 1], rgb.pixels[i + 2], k});
  }
  return spec;
}

TEST(Jpeg, AdobeCmykBecomesRgb) {
  const Image source = smooth_image(24, 16);
  const std::string jpeg = jpeg_bytes(cmyk_spec(source, 255));
  ASSERT_NE(jpeg.find("Adobe"), std::string::npos);
  EXPECT_LT(compare(decode_bytes(jpeg), source).mean, 2.0);

  Image darker = source;
  for (auto& v : darker.pixels) v = static_cast<uint8_t>((v * 128 + 127) / 255);
  EXPECT_LT(compare(decode_bytes(jpeg_bytes(cmyk_spec(source, 128))), darker).mean, 2.0);
}

TEST(Jpeg, YcckBecomesRgb) {
  const Image source = smooth_image(24, 16);
  JpegSpec spec = cmyk_spec(source, 255);
  spec.jpeg_color_space = JCS_YCCK;
  EXPECT_LT(compare(decode_bytes(jpeg_bytes(spec)), source).mean, 3.0);
}

TEST(Jpeg, ProgressiveDecodes) {
  const Image source = smooth_image(50, 38);
  const std::string jpeg = jpeg_rgb(source, 95, true);
  ASSERT_NE(find_marker(jpeg, 0xC2), std::string::npos);  // SOF2: progressive
  EXPECT_LT(compare(decode_bytes(jpeg), source).mean, 2.0);
}

TEST(Jpeg, TruncatedIsRefusedAtEveryStage) {
  const std::string jpeg = jpeg_rgb(pattern_image(64, 64, 5), 90);
  const size_t sos = find_marker(jpeg, 0xDA);
  ASSERT_NE(sos, std::string::npos);
  const size_t scan_start = sos + 2 + ((uint8_t(jpeg[sos + 2]) << 8) | uint8_t(jpeg[sos + 3]));
  const size_t scan_length = jpeg.size() - 2 - scan_start;
  // In the headers, right after them, and half-way and near the end of the scan.
  for (size_t keep : {size_t(3), size_t(40), sos + 4, scan_start, scan_start + scan_length / 2,
                      scan_start + scan_length - 30}) {
    const std::string reason = decode_failure(jpeg.substr(0, keep));
    EXPECT_TRUE(contains(reason, "truncated JPEG data")) << "kept " << keep << ": " << reason;
  }
  // Progressive: libjpeg reads all scans before the first row comes out.
  const std::string progressive = jpeg_rgb(pattern_image(64, 64, 5), 90, true);
  EXPECT_TRUE(contains(decode_failure(progressive.substr(0, progressive.size() / 2)), "truncated JPEG data"));
}

TEST(Jpeg, JunkBeforeEndMarkerIsHarmlessButJunkBetweenScansIsNot) {
  const Image source = smooth_image(40, 40);
  const std::string jpeg = jpeg_rgb(source, 90);
  std::string junk_at_end = jpeg;
  junk_at_end.insert(jpeg.size() - 2, "some trailing junk");
  EXPECT_EQ(decode_bytes(junk_at_end).pixels, decode_bytes(jpeg).pixels);

  std::string progressive = jpeg_rgb(source, 90, true);
  const size_t second_scan = find_marker(progressive, 0xDA, find_marker(progressive, 0xDA) + 2);
  ASSERT_NE(second_scan, std::string::npos);
  progressive.insert(second_scan, "junk");
  const std::string reason = decode_failure(progressive);
  EXPECT_TRUE(contains(reason, "corrupt JPEG data")) << reason;
  EXPECT_TRUE(contains(reason, "libjpeg")) << reason;  // libjpeg's own words are kept
}

std::string jpeg_with_size(std::string jpeg, uint16_t width, uint16_t height) {
  const size_t sof = find_marker(jpeg, 0xC0);
  EXPECT_NE(sof, std::string::npos);
  jpeg[sof + 5] = static_cast<char>(height >> 8);
  jpeg[sof + 6] = static_cast<char>(height & 0xFF);
  jpeg[sof + 7] = static_cast<char>(width >> 8);
  jpeg[sof + 8] = static_cast<char>(width & 0xFF);
  return jpeg;
}

TEST(Jpeg, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  const std::string jpeg = jpeg_with_size(jpeg_rgb(pattern_image(16, 16)), 60000, 60000);
  const std::string reason = decode_failure(jpeg);
  EXPECT_TRUE(contains(reason, "too large")) << reason;
  const ImageInfo info = probe_image(bytes_of(jpeg), jpeg.size());
  EXPECT_EQ(info.width, 60000);
  EXPECT_EQ(info.height, 60000);
}

TEST(Jpeg, DctScalingPicksLargestReductionThatKeepsTheTarget) {
  const std::string jpeg = jpeg_rgb(smooth_image(800, 600), 90);
  auto decoded_size = [&](int tw, int th) {
    DecodeOptions options;
    options.target_width = tw;
    options.target_height = th;
    const Image image = decode_bytes(jpeg, options);
    return std::make_pair(image.width, image.height);
  };
  using Size = std::pair<int, int>;
  EXPECT_EQ(decoded_size(150, 150), Size(200, 150));  // 1/4; 1/8 would be 100x75
  EXPECT_EQ(decoded_size(0, 0), Size(800, 600));
  EXPECT_EQ(decoded_size(400, 300), Size(400, 300));  // exactly 1/2
  EXPECT_EQ(decoded_size(401, 300), Size(800, 600));  // 1/2 would be one column short
  EXPECT_EQ(decoded_size(100, 75), Size(100, 75));    // 1/8
  EXPECT_EQ(decoded_size(10, 10), Size(100, 75));     // never below 1/8
  EXPECT_EQ(decoded_size(201, 10), Size(400, 300));

  // Sizes that do not divide: libjpeg rounds up (ceil(333/4) = 84).
  const std::string odd = jpeg_rgb(smooth_image(333, 251), 90);
  DecodeOptions options;
  options.target_width = 80;
  options.target_height = 60;
  const Image image = decode_bytes(odd, options);
  EXPECT_EQ(image.width, 84);
  EXPECT_EQ(image.height, 63);
}

TEST(Jpeg, DctScaledLoadMatchesFullDecodeThenResize) {
  const fs::path dir = testing::scratch_dir("decode_dct_load");
  const Image source = smooth_image(800, 600);
  testing::write_bytes(dir / "smooth.jpg", jpeg_rgb(source, 95));
  for (bool crop : {false, true}) {
    Image fast(150, 150);
    load_image_resized(dir / "smooth.jpg", 150, 150, crop, fast.pixels.data());
    const Image full = decode_image_file(dir / "smooth.jpg");
    ASSERT_EQ(full.width, 800);
    const Image reference = crop ? resize_bilinear(testing::center_crop_to_aspect(full, 1, 1), 150, 150)
                                 : resize_bilinear(full, 150, 150);
    const PixelDiff d = compare(fast, reference);
    EXPECT_LT(d.mean, 1.5) << "crop=" << crop;
    EXPECT_LT(d.max, 16) << "crop=" << crop;
  }
}

// ---- BMP ---------------------------------------------------------------------

TEST(Bmp, TwentyFourBitBottomUpAndTopDown) {
  const Image source = pattern_image(7, 5, 1);  // 21-byte rows: padding needed
  EXPECT_EQ(decode_bytes(bmp_bytes(bmp_truecolor(source, 24))).pixels, source.pixels);
  EXPECT_EQ(decode_bytes(bmp_bytes(bmp_truecolor(source, 24, true))).pixels, source.pixels);
}

TEST(Bmp, ThirtyTwoBitPlainIgnoresFourthByte) {
  const Image source = pattern_image(6, 4, 2);
  EXPECT_EQ(decode_bytes(bmp_bytes(bmp_truecolor(source, 32))).pixels, source.pixels);
  EXPECT_EQ(decode_bytes(bmp_bytes(bmp_truecolor(source, 32, true))).pixels, source.pixels);
}

TEST(Bmp, ThirtyTwoBitBitFieldsInV5Header) {
  const Image source = pattern_image(5, 3, 3);
  BmpSpec spec;
  spec.width = 5;
  spec.height = 3;
  spec.bits = 32;
  spec.compression = 3;
  spec.dib_size = 124;
  spec.masks = {0x000000FF, 0x0000FF00, 0x00FF0000, 0xFF000000};  // RGBA byte order
  for (size_t i = 0; i < source.pixels.size(); i += 3) {
    spec.rows.insert(spec.rows.end(), {source.pixels[i], source.pixels[i + 1], source.pixels[i + 2], 0x00});
  }
  EXPECT_EQ(decode_bytes(bmp_bytes(spec)).pixels, source.pixels);
}

TEST(Bmp, SixteenBit555And565) {
  // 5-5-5: x rrrrr ggggg bbbbb. Values scale to 8 bits by v * 255 / 31, rounded.
  BmpSpec spec;
  spec.width = 3;
  spec.height = 1;
  spec.bits = 16;
  auto put16 = [&](uint16_t v) { spec.rows.insert(spec.rows.end(), {uint8_t(v & 0xFF), uint8_t(v >> 8)}); };
  put16(0x7C00);                                  // pure red
  put16(static_cast<uint16_t>((16 << 5) | 1));    // g = 16, b = 1
  put16(0x7FFF);                                  // white
  EXPECT_EQ(decode_bytes(bmp_bytes(spec)).pixels,
            (std::vector<uint8_t>{255, 0, 0, 0, 132, 8, 255, 255, 255}));

  // 5-6-5 through bit fields after a 40-byte header.
  BmpSpec bf;
  bf.width = 2;
  bf.height = 1;
  bf.bits = 16;
  bf.compression = 3;
  bf.masks = {0xF800, 0x07E0, 0x001F};
  auto put = [&](uint16_t v) { bf.rows.insert(bf.rows.end(), {uint8_t(v & 0xFF), uint8_t(v >> 8)}); };
  put(static_cast<uint16_t>((31 << 11) | (32 << 5) | 0));  // r max, g = 32/63
  put(static_cast<uint16_t>((1 << 11) | (63 << 5) | 31));
  EXPECT_EQ(decode_bytes(bmp_bytes(bf)).pixels, (std::vector<uint8_t>{255, 130, 0, 8, 255, 255}));
}

TEST(Bmp, PaletteEightFourAndOneBit) {
  for (int bits : {8, 4, 1}) {
    const int colors = 1 << bits;
    BmpSpec spec;
    spec.width = 13;
    spec.height = 6;
    spec.bits = bits;
    spec.top_down = bits == 4;
    for (int i = 0; i < colors; ++i) {
      spec.palette.push_back({uint8_t(i * 255 / (colors - 1)), uint8_t(i * 37), uint8_t(255 - i)});
    }
    std::vector<uint8_t> indices;
    for (int i = 0; i < 13 * 6; ++i) indices.push_back(static_cast<uint8_t>((i * 5 + i / 13) % colors));
    spec.rows = bits == 8 ? indices : pack_rows(indices, 13, 6, bits);
    const Image decoded = decode_bytes(bmp_bytes(spec));
    ASSERT_EQ(decoded.width, 13) << bits;
    for (size_t i = 0; i < indices.size(); ++i) {
      const auto& c = spec.palette[indices[i]];
      ASSERT_EQ(decoded.pixels[i * 3 + 0], c[0]) << bits << " bit, pixel " << i;
      ASSERT_EQ(decoded.pixels[i * 3 + 1], c[1]) << bits << " bit, pixel " << i;
      ASSERT_EQ(decoded.pixels[i * 3 + 2], c[2]) << bits << " bit, pixel " << i;
    }
  }
}

TEST(Bmp, ShortPaletteGivesBlackForMissingEntries) {
  BmpSpec spec;
  spec.width = 4;
  spec.height = 1;
  spec.bits = 8;
  spec.palette = {{10, 20, 30}, {40, 50, 60}};
  spec.rows = {0, 1, 2, 200};
  EXPECT_EQ(decode_bytes(bmp_bytes(spec)).pixels, (std::vector<uint8_t>{10, 20, 30, 40, 50, 60, 0, 0, 0, 0, 0, 0}));
}

TEST(Bmp, CoreHeader) {
  const Image source = pattern_image(5, 4, 6);
  BmpSpec spec = bmp_truecolor(source, 24);
  spec.dib_size = 12;
  EXPECT_EQ(decode_bytes(bmp_bytes(spec)).pixels, source.pixels);
}

TEST(Bmp, BrokenFilesAreRefused) {
  const std::string good = bmp_bytes(bmp_truecolor(pattern_image(8, 8), 24));
  auto with32 = [&](size_t at, uint32_t v) {
    std::string s = good;
    put_le32(s, at, v);
    return s;
  };
  EXPECT_TRUE(contains(decode_failure(with32(10, 5000)), "offset")) << decode_failure(with32(10, 5000));
  EXPECT_TRUE(contains(decode_failure(with32(10, 0xFFFFFFF0u)), "offset"));
  EXPECT_TRUE(contains(decode_failure(with32(10, 20)), "offset"));  // pixels inside the header
  EXPECT_TRUE(contains(decode_failure(good.substr(0, good.size() - 10)), "truncated BMP data"));
  EXPECT_TRUE(contains(decode_failure(good.substr(0, 30)), "truncated BMP data"));
  EXPECT_TRUE(contains(decode_failure(with32(30, 1)), "RLE"));
  EXPECT_TRUE(contains(decode_failure(with32(30, 4)), "JPEG or PNG"));
  EXPECT_TRUE(contains(decode_failure(with32(30, 99)), "compression"));
  EXPECT_TRUE(contains(decode_failure(with32(18, 0)), "invalid BMP image size"));
  EXPECT_TRUE(contains(decode_failure(with32(22, 0x80000000u)), "BMP"));  // height INT32_MIN
  std::string two_bit = good;
  put_le16(two_bit, 28, 2);
  EXPECT_TRUE(contains(decode_failure(two_bit), "bit depth"));
  // A width whose row size overflows 32 bits must not wrap around.
  DecodeOptions no_limit;
  no_limit.max_pixels = UINT64_MAX;
  EXPECT_TRUE(contains(decode_failure(with32(18, 0x7FFFFFFF), no_limit), "truncated"));
}

TEST(Bmp, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  std::string bmp = bmp_bytes(bmp_truecolor(pattern_image(4, 4), 24));
  put_le32(bmp, 18, 60000);
  put_le32(bmp, 22, 60000);
  EXPECT_TRUE(contains(decode_failure(bmp), "too large"));
}

// ---- GIF ---------------------------------------------------------------------

// The classic 43-byte 1x1 transparent GIF.
const std::string kTinyGif(
    "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    ",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;",
    43);

#ifdef TABBY_HAVE_GIF

std::vector<std::array<uint8_t, 3>> gif_palette(int n) {
  std::vector<std::array<uint8_t, 3>> colors;
  for (int i = 0; i < n; ++i) colors.push_back({uint8_t(i), uint8_t(255 - i), uint8_t((i * 37) & 0xFF)});
  return colors;
}

TEST(Gif, TinyTransparentGifIsBlack) {
  const Image image = decode_bytes(kTinyGif);
  EXPECT_EQ(image.width, 1);
  EXPECT_EQ(image.pixels, (std::vector<uint8_t>{0, 0, 0}));
}

TEST(Gif, RoundTripWithTransparencyAndInterlace) {
  const auto colors = gif_palette(256);
  for (bool interlaced : {false, true}) {
    GifFrame frame;
    frame.width = 23;
    frame.height = 17;
    frame.interlaced = interlaced;
    frame.transparent = 5;
    for (int i = 0; i < 23 * 17; ++i) frame.indices.push_back(static_cast<uint8_t>((i * 13) % 256));
    const Image image = decode_bytes(gif_bytes(23, 17, colors, {frame}));
    ASSERT_EQ(image.width, 23);
    ASSERT_EQ(image.height, 17);
    for (size_t i = 0; i < frame.indices.size(); ++i) {
      const uint8_t index = frame.indices[i];
      const std::array<uint8_t, 3> expected = index == 5 ? std::array<uint8_t, 3>{0, 0, 0} : colors[index];
      ASSERT_EQ(image.pixels[i * 3 + 0], expected[0]) << "pixel " << i << (interlaced ? " interlaced" : "");
      ASSERT_EQ(image.pixels[i * 3 + 1], expected[1]) << "pixel " << i;
      ASSERT_EQ(image.pixels[i * 3 + 2], expected[2]) << "pixel " << i;
    }
  }
}

TEST(Gif, FirstFrameIsDrawnOntoTheLogicalScreen) {
  // A 3x2 frame at (2,1) on a 6x4 screen with a local colour table, then a
  // second frame covering everything, which must be ignored.
  GifFrame first;
  first.left = 2;
  first.top = 1;
  first.width = 3;
  first.height = 2;
  first.colors = {{200, 0, 0}, {0, 200, 0}};
  first.indices = {0, 1, 0, 1, 0, 1};
  GifFrame second;
  second.width = 6;
  second.height = 4;
  second.indices.assign(24, 3);
  const Image image = decode_bytes(gif_bytes(6, 4, gif_palette(4), {first, second}));
  ASSERT_EQ(image.width, 6);
  ASSERT_EQ(image.height, 4);
  auto px = [&](int x, int y) {
    const uint8_t* p = image.row(y) + x * 3;
    return std::array<int, 3>{p[0], p[1], p[2]};
  };
  EXPECT_EQ(px(0, 0), (std::array<int, 3>{0, 0, 0}));  // uncovered: black
  EXPECT_EQ(px(2, 1), (std::array<int, 3>{200, 0, 0}));
  EXPECT_EQ(px(3, 1), (std::array<int, 3>{0, 200, 0}));
  EXPECT_EQ(px(4, 2), (std::array<int, 3>{0, 200, 0}));
  EXPECT_EQ(px(5, 3), (std::array<int, 3>{0, 0, 0}));
  const ImageInfo info = probe_image(reinterpret_cast<const uint8_t*>(kTinyGif.data()), kTinyGif.size());
  EXPECT_EQ(info.format, ImageFormat::Gif);
  EXPECT_EQ(info.width, 1);
}

TEST(Gif, FrameOutsideTheScreenIsClipped) {
  GifFrame frame;
  frame.left = 3;
  frame.width = 4;
  frame.height = 2;
  frame.indices.assign(8, 1);
  const Image image = decode_bytes(gif_bytes(5, 2, gif_palette(2), {frame}));
  ASSERT_EQ(image.width, 5);
  EXPECT_EQ(image.row(1)[3 * 3 + 1], 254);  // palette entry 1 = (1, 254, 37)
  EXPECT_EQ(image.row(1)[4 * 3 + 1], 254);
  EXPECT_EQ(image.row(1)[2 * 3 + 1], 0);
}

TEST(Gif, BrokenFilesAreRefused) {
  GifFrame frame;
  frame.width = 40;
  frame.height = 30;
  for (int i = 0; i < 1200; ++i) frame.indices.push_back(static_cast<uint8_t>((i * 7919) % 256));
  const std::string gif = gif_bytes(40, 30, gif_palette(256), {frame});
  EXPECT_TRUE(contains(decode_failure(gif.substr(0, gif.size() / 2)), "truncated GIF data"));
  EXPECT_TRUE(contains(decode_failure(gif.substr(0, 10)), "truncated GIF data"));
  std::string huge = gif;
  huge[6] = huge[7] = huge[8] = huge[9] = '\xFF';
  EXPECT_TRUE(contains(decode_failure(huge), "too large"));
}

#else

TEST(Gif, RefusedWhenBuiltWithoutGiflib) {
  EXPECT_TRUE(contains(decode_failure(kTinyGif), "built without GIF support"));
}

#endif

// ---- unsupported and broken input --------------------------------------------

TEST(Broken, EmptyRandomAndTextAreRefused) {
  EXPECT_EQ(decode_failure(""), "empty file");
  std::mt19937 rng(7);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  EXPECT_TRUE(contains(decode_failure(random), "not an image"));
  EXPECT_TRUE(contains(decode_failure("<html><body>404 Not Found</body></html>"), "not an image"));
}

TEST(Broken, RecognisedButUnsupportedFormatsAreNamed) {
  EXPECT_EQ(decode_failure("RIFF\x24\0\0\0WEBPVP8 \x18\0\0\0"s), "WebP images are not supported");
  EXPECT_TRUE(contains(decode_failure(std::string("II*\0\x08\0\0\0", 8)), "TIFF"));
  EXPECT_TRUE(contains(decode_failure(std::string("\0\0\0\x18" "ftypheic\0\0\0\0", 16)), "HEIC"));
}

TEST(Broken, FilesNameThePathAndTheReason) {
  const fs::path dir = testing::scratch_dir("decode_broken_files");
  testing::write_bytes(dir / "empty.jpg", "");
  testing::write_bytes(dir / "webp.jpg", "RIFF\x24\0\0\0WEBPVP8 "s);
  testing::write_bytes(dir / "notes.jpg", "these are not the pixels you are looking for\n");
  fs::create_directories(dir / "folder.jpg");

  auto failure = [](const fs::path& path) -> std::pair<std::string, std::string> {
    try {
      decode_image_file(path);
    } catch (const DecodeError& e) {
      return {e.what(), e.reason()};
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a DecodeError: " << e.what();
      return {};
    }
    ADD_FAILURE() << path << " decoded";
    return {};
  };
  for (const char* name : {"empty.jpg", "webp.jpg", "notes.jpg", "folder.jpg", "missing.jpg"}) {
    const auto [what, reason] = failure(dir / name);
    EXPECT_TRUE(contains(what, (dir / name).string())) << what;
    EXPECT_FALSE(contains(reason, (dir / name).string())) << reason;
  }
  EXPECT_EQ(failure(dir / "empty.jpg").second, "empty file");
  EXPECT_TRUE(contains(failure(dir / "webp.jpg").second, "WebP"));
  EXPECT_TRUE(contains(failure(dir / "notes.jpg").second, "not an image"));
  EXPECT_TRUE(contains(failure(dir / "folder.jpg").second, "directory"));
  EXPECT_TRUE(contains(failure(dir / "missing.jpg").second, "not found"));

  // Unreadable (only meaningful when not running as root).
  testing::write_bytes(dir / "locked.png", encode_png(pattern_image(2, 2)));
  ::chmod((dir / "locked.png").c_str(), 0);
  if (::access((dir / "locked.png").c_str(), R_OK) != 0) {
    EXPECT_TRUE(contains(failure(dir / "locked.png").second, "cannot open")) << failure(dir / "locked.png").second;
  }
  ::chmod((dir / "locked.png").c_str(), 0644);
}

TEST(Broken, PixelLimitAppliesToEveryFormat) {
  DecodeOptions small;
  small.max_pixels = 399;  // the images below have 400 pixels
  const Image image = pattern_image(20, 20);
  std::vector<std::string> files = {encode_png(image), jpeg_rgb(image), bmp_bytes(bmp_truecolor(image, 24))};
#ifdef TABBY_HAVE_GIF
  GifFrame frame;
  frame.width = frame.height = 20;
  frame.indices.assign(400, 1);
  files.push_back(gif_bytes(20, 20, {{1, 2, 3}, {4, 5, 6}}, {frame}));
#endif
  for (const std::string& file : files) {
    EXPECT_TRUE(contains(decode_failure(file, small), "too large")) << format_name(sniff(file));
    small.max_pixels = 400;
    EXPECT_NO_THROW(decode_bytes(file, small));
    small.max_pixels = 399;
  }
}

// Every prefix and many single-byte corruptions of a valid file either decode
// or throw DecodeError: no crash, no other exception, no hang.
TEST(Broken, PrefixesAndBitFlipsNeverCrash) {
  const Image image = pattern_image(24, 16, 9);
  std::vector<std::string> files = {encode_png(image), jpeg_rgb(image, 80), jpeg_rgb(image, 80, true),
                                    bmp_bytes(bmp_truecolor(image, 24))};
#ifdef TABBY_HAVE_GIF
  GifFrame frame;
  frame.width = 24;
  frame.height = 16;
  frame.interlaced = true;
  for (int i = 0; i < 24 * 16; ++i) frame.indices.push_back(static_cast<uint8_t>(i % 64));
  files.push_back(gif_bytes(24, 16, gif_palette(64), {frame}));
#endif
  std::mt19937 rng(1234);
  for (const std::string& file : files) {
    for (size_t keep = 0; keep < file.size(); keep += 1 + keep / 64) decodes_or_refuses(file.substr(0, keep));
    for (int trial = 0; trial < 300; ++trial) {
      std::string damaged = file;
      for (int flips = 0; flips < 3; ++flips) {
        damaged[rng() % damaged.size()] = static_cast<char>(rng());
      }
      decodes_or_refuses(damaged);
    }
  }
}

// ---- probing -----------------------------------------------------------------

TEST(Probe, ReadsSizeFromHeaders) {
  const Image image = pattern_image(31, 17);
  struct Case {
    std::string bytes;
    ImageFormat format;
  };
  std::vector<Case> cases = {{encode_png(image), ImageFormat::Png},
                             {jpeg_rgb(image), ImageFormat::Jpeg},
                             {bmp_bytes(bmp_truecolor(image, 24, true)), ImageFormat::Bmp}};
#ifdef TABBY_HAVE_GIF
  GifFrame frame;
  frame.width = 31;
  frame.height = 17;
  frame.indices.assign(31 * 17, 0);
  cases.push_back({gif_bytes(31, 17, gif_palette(2), {frame}), ImageFormat::Gif});
#endif
  for (const Case& c : cases) {
    const ImageInfo info = probe_image(bytes_of(c.bytes), c.bytes.size());
    EXPECT_EQ(info.format, c.format);
    EXPECT_EQ(info.width, 31) << format_name(c.format);
    EXPECT_EQ(info.height, 17) << format_name(c.format);
  }
}

TEST(Probe, RefusesWhatItCannotRead) {
  auto probe_failure = [](const std::string& s) {
    try {
      probe_image(bytes_of(s), s.size());
    } catch (const DecodeError& e) {
      return e.reason();
    }
    return std::string("probed");
  };
  EXPECT_EQ(probe_failure(""), "empty file");
  EXPECT_EQ(probe_failure("RIFF\x24\0\0\0WEBPVP8 "s), "WebP images are not supported");
  EXPECT_TRUE(contains(probe_failure("plain text"), "not an image"));
  const std::string png = encode_png(pattern_image(4, 4));
  EXPECT_EQ(probe_failure(png.substr(0, 20)), "truncated PNG header");
  const std::string jpeg = jpeg_rgb(pattern_image(4, 4));
  EXPECT_EQ(probe_failure(jpeg.substr(0, find_marker(jpeg, 0xC0))), "truncated JPEG header");
}

TEST(Probe, FileWithLargeMetadataBeforeTheFrameHeader) {
  // Two 60 KB APP15 segments push the frame header past the first 64 KB read.
  const Image image = smooth_image(30, 20);
  std::string jpeg = jpeg_rgb(image);
  std::string app(4 + 60000, 'x');
  app[0] = '\xFF';
  app[1] = '\xEF';
  app[2] = static_cast<char>((60002 >> 8) & 0xFF);
  app[3] = static_cast<char>(60002 & 0xFF);
  jpeg.insert(2, app + app);
  const fs::path dir = testing::scratch_dir("decode_probe_large");
  testing::write_bytes(dir / "big_exif.jpg", jpeg);
  const ImageInfo info = probe_image_file(dir / "big_exif.jpg");
  EXPECT_EQ(info.format, ImageFormat::Jpeg);
  EXPECT_EQ(info.width, 30);
  EXPECT_EQ(info.height, 20);
  EXPECT_EQ(decode_image_file(dir / "big_exif.jpg").width, 30);
}

// ---- threads -----------------------------------------------------------------

TEST(Threads, ConcurrentDecodesAgree) {
  const Image image = smooth_image(64, 48);
  const std::string jpeg = jpeg_rgb(image), png = encode_png(image);
  const std::string broken = jpeg.substr(0, jpeg.size() / 2);
  const Image expected = decode_bytes(jpeg);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        if (decode_bytes(jpeg).pixels != expected.pixels) ++mismatches[t];
        if (decode_bytes(png).pixels != image.pixels) ++mismatches[t];
        try {
          decode_bytes(broken);
          ++mismatches[t];
        } catch (const DecodeError&) {
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace tabby
