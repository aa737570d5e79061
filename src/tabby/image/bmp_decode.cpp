// BMP decoding, written here (no library): OS/2 and Windows headers up to V5,
// 1/4/8-bit palettes, 16-bit (5-5-5 or bit fields), 24-bit, 32-bit (plain or
// bit fields), bottom-up and top-down. RLE and embedded JPEG/PNG are refused.
//
// Every offset and size comes from the file, so each is checked against the
// buffer before use, with arithmetic that cannot overflow.
#include <cstring>
#include <string>

#include "tabby/image/codecs.h"

namespace tabby::detail {

namespace {

constexpr size_t kFileHeaderSize = 14;

enum Compression : uint32_t {
  kRgb = 0,
  kRle8 = 1,
  kRle4 = 2,
  kBitFields = 3,
  kJpeg = 4,
  kPng = 5,
  kAlphaBitFields = 6,
};

struct BmpHeader {
  uint32_t pixel_offset = 0;
  uint32_t dib_size = 0;
  int64_t width = 0;
  int64_t height = 0;  // of the image, always positive
  bool top_down = false;
  unsigned bits = 0;
  uint32_t compression = kRgb;
  uint32_t colors_used = 0;
  bool os2 = false;
};

// Returns false when the buffer ends inside the header.
bool parse_header(const uint8_t* data, size_t size, BmpHeader* h) {
  if (size < kFileHeaderSize + 4) return false;
  h->pixel_offset = load_le32(data + 10);
  h->dib_size = load_le32(data + 14);
  const uint8_t* dib = data + kFileHeaderSize;
  if (h->dib_size < 12 || h->dib_size > 4096) {
    throw DecodeError("corrupt BMP header (bad header size " + std::to_string(h->dib_size) + ")");
  }
  if (size - kFileHeaderSize < h->dib_size) return false;

  if (h->dib_size == 12) {  // BITMAPCOREHEADER: 16-bit unsigned sizes
    h->os2 = true;
    h->width = load_le16(dib + 4);
    h->height = load_le16(dib + 6);
    h->bits = load_le16(dib + 10);
    return true;
  }
  if (h->dib_size < 16) throw DecodeError("corrupt BMP header (bad header size " + std::to_string(h->dib_size) + ")");
  // BITMAPINFOHEADER and its successors; OS/2 2.x headers (16..64 bytes)
  // share the first 40 bytes, and may stop early.
  h->os2 = h->dib_size == 16 || h->dib_size == 64;
  h->width = static_cast<int32_t>(load_le32(dib + 4));
  const int32_t height = static_cast<int32_t>(load_le32(dib + 8));
  h->bits = load_le16(dib + 14);
  if (h->dib_size >= 20) h->compression = load_le32(dib + 16);
  if (h->dib_size >= 36) h->colors_used = load_le32(dib + 32);
  h->top_down = height < 0;
  h->height = height < 0 ? -static_cast<int64_t>(height) : height;
  return true;
}

// One colour channel of a bit-field pixel, scaled to 0..255.
struct Channel {
  uint32_t mask = 0;
  int shift = 0;
  uint32_t max = 0;  // mask >> shift

  explicit Channel(uint32_t m = 0) : mask(m) {
    if (mask == 0) return;
    while (((mask >> shift) & 1u) == 0) ++shift;
    max = mask >> shift;
  }
  uint8_t operator()(uint32_t pixel) const {
    if (max == 0) return 0;
    const uint64_t v = (pixel & mask) >> shift;
    return static_cast<uint8_t>((v * 255 + max / 2) / max);
  }
};

struct Palette {
  uint8_t rgb[256][3] = {};
  unsigned count = 0;
};

[[noreturn]] void truncated(const char* what) { throw DecodeError(std::string("truncated BMP data (") + what + ")"); }

}  // namespace

Image decode_bmp(const uint8_t* data, size_t size, const DecodeOptions& options) {
  BmpHeader h;
  if (!parse_header(data, size, &h)) truncated("header");
  check_dimensions(ImageFormat::Bmp, h.width, h.height, options.max_pixels);

  if (h.os2 && (h.compression == 3 || h.compression == 4)) {
    throw DecodeError("compressed OS/2 BMP images are not supported");
  }
  switch (h.compression) {
    case kRgb:
    case kBitFields:
    case kAlphaBitFields:
      break;
    case kRle8:
    case kRle4:
      throw DecodeError("RLE-compressed BMP images are not supported", "convert it to PNG or JPEG");
    case kJpeg:
    case kPng:
      throw DecodeError("BMP images holding JPEG or PNG data are not supported", "convert it to PNG or JPEG");
    default:
      throw DecodeError("corrupt BMP header (unknown compression " + std::to_string(h.compression) + ")");
  }
  const bool bit_fields = h.compression == kBitFields || h.compression == kAlphaBitFields;
  const unsigned b = h.bits;
  if (!(b == 1 || b == 4 || b == 8 || b == 16 || b == 24 || b == 32)) {
    throw DecodeError("unsupported BMP bit depth " + std::to_string(b));
  }
  if (bit_fields && b != 16 && b != 32) {
    throw DecodeError("corrupt BMP header (bit fields with " + std::to_string(b) + " bits per pixel)");
  }

  // Bit masks live inside V2+ headers, or right after a 40-byte header.
  size_t table_start = kFileHeaderSize + h.dib_size;
  Channel red, green, blue;
  if (bit_fields) {
    const uint8_t* masks = nullptr;
    if (h.dib_size >= 52) {
      masks = data + kFileHeaderSize + 40;
    } else {
      const size_t mask_bytes = h.compression == kAlphaBitFields ? 16 : 12;
      if (size - table_start < mask_bytes) truncated("bit masks");
      masks = data + table_start;
      table_start += mask_bytes;
    }
    red = Channel(load_le32(masks));
    green = Channel(load_le32(masks + 4));
    blue = Channel(load_le32(masks + 8));
  } else if (b == 16) {
    red = Channel(0x7C00);
    green = Channel(0x03E0);
    blue = Channel(0x001F);
  }

  if (h.pixel_offset < table_start || h.pixel_offset > size) {
    throw DecodeError("corrupt BMP header (pixel data offset " + std::to_string(h.pixel_offset) +
                      " outside the file)");
  }

  Palette palette;
  if (b <= 8) {
    const size_t entry = h.dib_size == 12 ? 3 : 4;  // BGR or BGRx
    const unsigned max_count = 1u << b;
    unsigned count = h.colors_used == 0 || h.colors_used > max_count ? max_count : h.colors_used;
    // Some writers declare more colours than they store: keep what lies
    // before the pixels. Indices past the table decode as black.
    const size_t room = (h.pixel_offset - table_start) / entry;
    if (count > room) count = static_cast<unsigned>(room);
    for (unsigned i = 0; i < count; ++i) {
      const uint8_t* p = data + table_start + i * entry;
      palette.rgb[i][0] = p[2];
      palette.rgb[i][1] = p[1];
      palette.rgb[i][2] = p[0];
    }
    palette.count = count;
  }

  const uint64_t stride = (static_cast<uint64_t>(h.width) * b + 31) / 32 * 4;
  const uint64_t available = size - h.pixel_offset;
  if (static_cast<uint64_t>(h.height) > available / stride) truncated("pixel data");

  Image image(static_cast<int>(h.width), static_cast<int>(h.height));
  const int width = image.width;
  for (int y = 0; y < image.height; ++y) {
    const int64_t file_row = h.top_down ? y : image.height - 1 - y;
    const uint8_t* src = data + h.pixel_offset + static_cast<uint64_t>(file_row) * stride;
    uint8_t* dst = image.row(y);
    switch (b) {
      case 1:
      case 4:
      case 8: {
        const unsigned per_byte = 8 / b, mask = (1u << b) - 1;
        for (int x = 0; x < width; ++x, dst += 3) {
          const unsigned shift = 8 - b * (1 + static_cast<unsigned>(x) % per_byte);
          const unsigned index = (src[static_cast<unsigned>(x) / per_byte] >> shift) & mask;
          if (index < palette.count) {
            std::memcpy(dst, palette.rgb[index], 3);
          } else {
            dst[0] = dst[1] = dst[2] = 0;
          }
        }
        break;
      }
      case 16:
        for (int x = 0; x < width; ++x, dst += 3, src += 2) {
          const uint32_t px = load_le16(src);
          dst[0] = red(px);
          dst[1] = green(px);
          dst[2] = blue(px);
        }
        break;
      case 24:
        for (int x = 0; x < width; ++x, dst += 3, src += 3) {
          dst[0] = src[2];
          dst[1] = src[1];
          dst[2] = src[0];
        }
        break;
      case 32:
        if (bit_fields) {
          for (int x = 0; x < width; ++x, dst += 3, src += 4) {
            const uint32_t px = load_le32(src);
            dst[0] = red(px);
            dst[1] = green(px);
            dst[2] = blue(px);
          }
        } else {  // BGRx; the fourth byte is unused (or alpha, which we drop)
          for (int x = 0; x < width; ++x, dst += 3, src += 4) {
            dst[0] = src[2];
            dst[1] = src[1];
            dst[2] = src[0];
          }
        }
        break;
    }
  }
  return image;
}

bool probe_bmp(const uint8_t* data, size_t size, ImageInfo* info) {
  BmpHeader h;
  if (!parse_header(data, size, &h)) return false;
  if (h.width <= 0 || h.height <= 0 || h.width > INT32_MAX || h.height > INT32_MAX) {
    throw DecodeError("invalid BMP image size " + std::to_string(h.width) + "x" + std::to_string(h.height));
  }
  info->width = static_cast<int>(h.width);
  info->height = static_cast<int>(h.height);
  return true;
}

}  // namespace tabby::detail
