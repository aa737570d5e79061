// Test-only image writers for the codec tests: every PNG colour type and bit
// depth, grey/CMYK/YCCK/progressive JPEG, hand-built BMP files of every kind
// the decoder reads, and GIF files through giflib. Header-only; the writers
// are deliberately independent of tabby's own encoders (except where a test
// says so), so a round trip checks the decoder against libpng/libjpeg/giflib.
#pragma once

#include <gtest/gtest.h>
#include <png.h>

#include <array>
#include <cmath>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <jpeglib.h>

#ifdef TABBY_HAVE_GIF
#include <gif_lib.h>
#endif

#include "support/test_support.h"
#include "tabby/image/decode.h"
#include "tabby/image/image.h"

namespace tabby::fixtures {

inline const uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

inline Image decode_bytes(const std::string& s, const DecodeOptions& options = {}) {
  return decode_image(bytes_of(s), s.size(), options);
}

// The reason a decode failed; "" (and a test failure) when it did not fail,
// or failed with anything but a DecodeError.
inline std::string decode_failure(const std::string& s, const DecodeOptions& options = {}) {
  try {
    Image image = decode_bytes(s, options);
    ADD_FAILURE() << "decoding succeeded (" << image.width << "x" << image.height << ") but should fail";
  } catch (const DecodeError& e) {
    return e.reason().empty() ? std::string("(empty reason)") : e.reason();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a DecodeError: " << e.what();
  }
  return "";
}

// Decoding must either succeed or throw DecodeError: never crash, never throw
// anything else. Returns true when it decoded.
inline bool decodes_or_refuses(const std::string& s) {
  try {
    Image image = decode_bytes(s);
    EXPECT_EQ(image.pixels.size(), static_cast<size_t>(image.width) * image.height * 3);
    return true;
  } catch (const DecodeError&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a DecodeError: " << e.what();
    return false;
  }
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline Image pattern_image(int width, int height, int seed = 0) {
  Image image(width, height);
  image.pixels = testing::test_pattern(width, height, seed);
  return image;
}

// A smooth image (no sharp edges) that JPEG reproduces closely.
inline Image smooth_image(int width, int height) {
  Image image(width, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = image.row(y) + x * 3;
      p[0] = static_cast<uint8_t>(128 + 90 * std::sin(x / 23.0) * std::cos(y / 31.0));
      p[1] = static_cast<uint8_t>(40 + (150 * x) / std::max(1, width - 1));
      p[2] = static_cast<uint8_t>(200 - (150 * y) / std::max(1, height - 1));
    }
  }
  return image;
}

struct PixelDiff {
  double mean = 0;
  int max = 0;
};

inline PixelDiff compare(const Image& a, const Image& b) {
  PixelDiff d;
  if (a.width != b.width || a.height != b.height) {
    ADD_FAILURE() << "sizes differ: " << a.width << "x" << a.height << " vs " << b.width << "x" << b.height;
    d.mean = d.max = 1000;
    return d;
  }
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int diff = std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    sum += diff;
    d.max = std::max(d.max, diff);
  }
  d.mean = a.pixels.empty() ? 0 : sum / a.pixels.size();
  return d;
}

// ---- PNG --------------------------------------------------------------------

struct PngSpec {
  int width = 0, height = 0;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<uint8_t> rows;  // packed rows, top to bottom, PNG byte order (16-bit big-endian)
  std::vector<png_color> palette;
  std::vector<uint8_t> transparency;  // tRNS entries for palette images
};

inline void png_fixture_write(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}

inline std::string png_bytes(const PngSpec& spec) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "libpng could not write the fixture";
    return "";
  }
  png_set_write_fn(png, &out, png_fixture_write, nullptr);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  if (!spec.transparency.empty()) {
    png_set_tRNS(png, info, spec.transparency.data(), static_cast<int>(spec.transparency.size()), nullptr);
  }
  png_write_info(png, info);
  if (spec.interlaced) png_set_interlace_handling(png);
  const size_t row_bytes = spec.rows.size() / static_cast<size_t>(spec.height);
  std::vector<png_bytep> rows(static_cast<size_t>(spec.height));
  for (int y = 0; y < spec.height; ++y) {
    rows[static_cast<size_t>(y)] = const_cast<png_bytep>(spec.rows.data() + y * row_bytes);
  }
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// Packs sample values of `bits` bits (1, 2, 4) MSB first, each row padded to
// whole bytes (PNG and BMP agree on this order).
inline std::vector<uint8_t> pack_rows(const std::vector<uint8_t>& samples, int width, int height, int bits) {
  const size_t row_bytes = (static_cast<size_t>(width) * bits + 7) / 8;
  std::vector<uint8_t> out(row_bytes * height, 0);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const unsigned v = samples[static_cast<size_t>(y) * width + x];
      const int bit = x * bits;
      out[y * row_bytes + bit / 8] |= static_cast<uint8_t>(v << (8 - bits - bit % 8));
    }
  }
  return out;
}

// ---- JPEG -------------------------------------------------------------------

struct JpegSpec {
  int width = 0, height = 0;
  int components = 3;
  J_COLOR_SPACE in_color_space = JCS_RGB;
  J_COLOR_SPACE jpeg_color_space = JCS_UNKNOWN;  // JCS_UNKNOWN: libjpeg's default for the input
  std::vector<uint8_t> samples;  // width * height * components
  int quality = 95;
  bool progressive = false;
};

inline std::string jpeg_bytes(const JpegSpec& spec) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = spec.width;
  cinfo.image_height = spec.height;
  cinfo.input_components = spec.components;
  cinfo.in_color_space = spec.in_color_space;
  jpeg_set_defaults(&cinfo);
  if (spec.jpeg_color_space != JCS_UNKNOWN) jpeg_set_colorspace(&cinfo, spec.jpeg_color_space);
  jpeg_set_quality(&cinfo, spec.quality, TRUE);
  if (spec.progressive) jpeg_simple_progression(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(spec.samples.data() +
                                        static_cast<size_t>(cinfo.next_scanline) * spec.width * spec.components);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<const char*>(buffer), size);
  std::free(buffer);
  return out;
}

inline std::string jpeg_rgb(const Image& image, int quality = 95, bool progressive = false) {
  JpegSpec spec;
  spec.width = image.width;
  spec.height = image.height;
  spec.samples = image.pixels;
  spec.quality = quality;
  spec.progressive = progressive;
  return jpeg_bytes(spec);
}

// Offset of the first occurrence of marker 0xFF `code` at or after `from`, or npos.
inline size_t find_marker(const std::string& jpeg, uint8_t code, size_t from = 0) {
  for (size_t i = from; i + 1 < jpeg.size(); ++i) {
    if (static_cast<uint8_t>(jpeg[i]) == 0xFF && static_cast<uint8_t>(jpeg[i + 1]) == code) return i;
  }
  return std::string::npos;
}

// ---- BMP --------------------------------------------------------------------

struct BmpSpec {
  int width = 0, height = 0;
  bool top_down = false;
  int bits = 24;
  uint32_t compression = 0;  // 0 BI_RGB, 3 BI_BITFIELDS
  uint32_t dib_size = 40;    // 12 (core), 40 (info), 108 (V4), 124 (V5)
  std::vector<std::array<uint8_t, 3>> palette;  // RGB entries
  std::vector<uint32_t> masks;                  // R, G, B (, A) for BI_BITFIELDS
  std::vector<uint8_t> rows;                    // packed rows, top to bottom, without padding
};

inline void put_le16(std::string& s, size_t at, uint32_t v) {
  s[at] = static_cast<char>(v & 0xFF);
  s[at + 1] = static_cast<char>((v >> 8) & 0xFF);
}
inline void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

inline std::string bmp_bytes(const BmpSpec& spec) {
  const bool core = spec.dib_size == 12;
  const size_t entry = core ? 3 : 4;
  const bool masks_after_header = spec.compression == 3 && spec.dib_size < 52;
  const size_t masks_size = masks_after_header ? 4 * spec.masks.size() : 0;
  const size_t pixel_offset = 14 + spec.dib_size + masks_size + entry * spec.palette.size();
  const size_t packed = (static_cast<size_t>(spec.width) * spec.bits + 7) / 8;
  const size_t stride = (static_cast<size_t>(spec.width) * spec.bits + 31) / 32 * 4;
  std::string s(pixel_offset + stride * spec.height, '\0');
  s[0] = 'B';
  s[1] = 'M';
  put_le32(s, 2, static_cast<uint32_t>(s.size()));
  put_le32(s, 10, static_cast<uint32_t>(pixel_offset));
  put_le32(s, 14, spec.dib_size);
  if (core) {
    put_le16(s, 18, spec.width);
    put_le16(s, 20, spec.height);
    put_le16(s, 22, 1);
    put_le16(s, 24, spec.bits);
  } else {
    put_le32(s, 18, static_cast<uint32_t>(spec.width));
    put_le32(s, 22, static_cast<uint32_t>(spec.top_down ? -spec.height : spec.height));
    put_le16(s, 26, 1);
    put_le16(s, 28, spec.bits);
    put_le32(s, 30, spec.compression);
    put_le32(s, 34, static_cast<uint32_t>(stride * spec.height));
    put_le32(s, 38, 2835);
    put_le32(s, 42, 2835);
    put_le32(s, 46, static_cast<uint32_t>(spec.palette.size()));
    size_t at = spec.dib_size >= 52 ? 14 + 40 : 14 + spec.dib_size;
    for (uint32_t m : spec.masks) {
      if (spec.dib_size >= 52 && at >= 14 + spec.dib_size) break;
      put_le32(s, at, m);
      at += 4;
    }
  }
  size_t at = 14 + spec.dib_size + masks_size;
  for (const auto& c : spec.palette) {
    s[at] = static_cast<char>(c[2]);
    s[at + 1] = static_cast<char>(c[1]);
    s[at + 2] = static_cast<char>(c[0]);
    at += entry;
  }
  for (int y = 0; y < spec.height; ++y) {
    const int file_row = spec.top_down ? y : spec.height - 1 - y;
    std::memcpy(&s[pixel_offset + file_row * stride], spec.rows.data() + y * packed, packed);
  }
  return s;
}

// 24-bit (BGR) or 32-bit BI_RGB (BGRx) rows of an image.
inline BmpSpec bmp_truecolor(const Image& image, int bits, bool top_down = false) {
  BmpSpec spec;
  spec.width = image.width;
  spec.height = image.height;
  spec.bits = bits;
  spec.top_down = top_down;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = image.row(y) + x * 3;
      spec.rows.insert(spec.rows.end(), {p[2], p[1], p[0]});
      if (bits == 32) spec.rows.push_back(0x5A);  // unused byte, must be ignored
    }
  }
  return spec;
}

// ---- GIF --------------------------------------------------------------------

struct GifFrame {
  int left = 0, top = 0, width = 0, height = 0;
  bool interlaced = false;
  int transparent = -1;
  std::vector<uint8_t> indices;                 // width * height, natural row order
  std::vector<std::array<uint8_t, 3>> colors;   // local colour table (empty: use the global one)
};

#ifdef TABBY_HAVE_GIF
inline int gif_fixture_write(GifFileType* gif, const GifByteType* data, int n) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), n);
  return n;
}

// A colour map of a power-of-two size, as giflib requires.
inline ColorMapObject* gif_color_map(const std::vector<std::array<uint8_t, 3>>& colors) {
  int size = 2;
  while (size < static_cast<int>(colors.size())) size *= 2;
  std::vector<GifColorType> entries(size, GifColorType{0, 0, 0});
  for (size_t i = 0; i < colors.size(); ++i) entries[i] = GifColorType{colors[i][0], colors[i][1], colors[i][2]};
  return GifMakeMapObject(size, entries.data());
}

inline std::string gif_bytes(int screen_width, int screen_height, const std::vector<std::array<uint8_t, 3>>& colors,
                             const std::vector<GifFrame>& frames) {
  std::string out;
  int error = 0;
  GifFileType* gif = EGifOpen(&out, gif_fixture_write, &error);
  EGifSetGifVersion(gif, true);
  ColorMapObject* global = colors.empty() ? nullptr : gif_color_map(colors);
  EXPECT_NE(EGifPutScreenDesc(gif, screen_width, screen_height, 8, 0, global), GIF_ERROR);
  for (const GifFrame& f : frames) {
    if (f.transparent >= 0) {
      const uint8_t gce[4] = {1, 0, 0, static_cast<uint8_t>(f.transparent)};
      EXPECT_NE(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, 4, gce), GIF_ERROR);
    }
    ColorMapObject* local = f.colors.empty() ? nullptr : gif_color_map(f.colors);
    EXPECT_NE(EGifPutImageDesc(gif, f.left, f.top, f.width, f.height, f.interlaced, local), GIF_ERROR);
    std::vector<int> order;
    if (f.interlaced) {
      for (int start : {0, 4, 2, 1}) {
        const int step = start == 0 || start == 4 ? 8 : start == 2 ? 4 : 2;
        for (int y = start; y < f.height; y += step) order.push_back(y);
      }
    } else {
      for (int y = 0; y < f.height; ++y) order.push_back(y);
    }
    for (int y : order) {
      std::vector<GifPixelType> line(f.indices.begin() + y * f.width, f.indices.begin() + (y + 1) * f.width);
      EXPECT_NE(EGifPutLine(gif, line.data(), f.width), GIF_ERROR);
    }
    if (local) GifFreeMapObject(local);
    // giflib keeps a copy of the local table and leaks it when the next frame
    // has none: release it here.
    if (gif->Image.ColorMap != nullptr) {
      GifFreeMapObject(gif->Image.ColorMap);
      gif->Image.ColorMap = nullptr;
    }
  }
  EXPECT_NE(EGifCloseFile(gif, &error), GIF_ERROR);
  if (global) GifFreeMapObject(global);
  return out;
}
#endif

}  // namespace tabby::fixtures
