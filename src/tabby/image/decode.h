// Image decoding: bytes or a file in, an 8-bit RGB tabby::Image out.
//
// The content decides the format (magic bytes), never the file name: a PNG
// named .jpg decodes as PNG. JPEG, PNG, BMP and GIF decode; other recognised
// formats (WebP, TIFF, HEIC, ...) are refused with an error naming them.
// Every failure is a DecodeError, whatever the input: real photo collections
// hold broken files, and the caller skips and counts them.
//
// Everything here is thread-safe: the input pipeline decodes on several
// threads at once, and no decoder keeps global mutable state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "tabby/image/image.h"
#include "tabby/util/error.h"

namespace tabby {

enum class ImageFormat { Unknown, Jpeg, Png, Bmp, Gif, Webp, Tiff, Heic, Avif, Ico, Jxl, Jpeg2000 };

// "JPEG", "PNG", "BMP", "GIF", "WebP", "TIFF", "HEIC", "AVIF", "ICO",
// "JPEG XL", "JPEG 2000"; "unknown" for Unknown.
const char* format_name(ImageFormat format);

// The format the leading bytes announce (Unknown when none matches).
ImageFormat sniff_format(const uint8_t* data, size_t size);

// True for the formats decode_image can turn into pixels.
bool is_decodable(ImageFormat format);

// A bad image. what() is one short reason ("truncated JPEG data", "empty
// file", "WebP images are not supported"); the *_file functions put the path
// in front of it. reason() is the reason alone, for tallies of broken files.
class DecodeError : public Error {
 public:
  // An empty hint means the default one (the file is damaged or unsupported).
  explicit DecodeError(const std::string& reason, std::string hint = {});
  // A failure of the file at `path`: what() names the path, reason() not.
  static DecodeError for_file(const std::filesystem::path& path, const std::string& reason, std::string hint = {});

  const std::string& reason() const { return reason_; }

 private:
  DecodeError(const std::string& what, const std::string& reason, std::string hint);
  std::string reason_;
};

struct ImageInfo {
  ImageFormat format = ImageFormat::Unknown;
  int width = 0;
  int height = 0;
};

// Format and size from the header alone (no pixel decoding). Throws
// DecodeError for unrecognised, unsupported or malformed headers.
ImageInfo probe_image(const uint8_t* data, size_t size);
// Reads only as much of the file as the header needs (usually a few KB).
ImageInfo probe_image_file(const std::filesystem::path& path);

struct DecodeOptions {
  // Both > 0: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (in the DCT
  // domain: faster, and a proper area average) as long as the decoded size
  // stays >= the target in both dimensions; the largest such reduction wins.
  // Other formats always decode at full size.
  int target_width = 0;
  int target_height = 0;
  // Images declaring more pixels than this (at full size) are refused before
  // anything is allocated: a 100-byte file may claim 60000x60000 pixels.
  uint64_t max_pixels = 178956970;
  // decode_image_file refuses larger files without reading them (a
  // multi-gigabyte file named .jpg would otherwise be read into memory).
  // Real photos are far smaller than the 1 GiB default.
  uint64_t max_file_bytes = uint64_t{1} << 30;
};

Image decode_image(const uint8_t* data, size_t size, const DecodeOptions& options = {});
Image decode_image_file(const std::filesystem::path& path, const DecodeOptions& options = {});

}  // namespace tabby
