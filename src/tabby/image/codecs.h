// Internal interface between decode.cpp (format dispatch, files, errors) and
// the per-format decoders. Not part of the public API: include decode.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tabby/image/decode.h"

namespace tabby::detail {

// Each decoder gets a buffer whose magic bytes already matched its format and
// throws DecodeError for anything wrong with it.
Image decode_jpeg(const uint8_t* data, size_t size, const DecodeOptions& options);
Image decode_png(const uint8_t* data, size_t size, const DecodeOptions& options);
Image decode_bmp(const uint8_t* data, size_t size, const DecodeOptions& options);
Image decode_gif(const uint8_t* data, size_t size, const DecodeOptions& options);

// Header probes: fill width/height and return true; return false when the
// data ends before the size is known (the caller may read more of the file);
// throw DecodeError when the header is malformed.
bool probe_jpeg(const uint8_t* data, size_t size, ImageInfo* info);
bool probe_png(const uint8_t* data, size_t size, ImageInfo* info);
bool probe_bmp(const uint8_t* data, size_t size, ImageInfo* info);
bool probe_gif(const uint8_t* data, size_t size, ImageInfo* info);

// Refuses non-positive sizes and images over the pixel limit. Decoders call it
// as soon as the header is read, before allocating anything of that size.
void check_dimensions(ImageFormat format, int64_t width, int64_t height, uint64_t max_pixels);

// Little/big-endian reads from a buffer whose bounds the caller checked.
inline uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t load_be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

}  // namespace tabby::detail
