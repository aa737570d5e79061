// Fuzz target: the image decoders (JPEG, PNG, BMP, GIF and the format
// sniffer), header probing, and the crop + resize that follows every decode
// in the input pipeline.
//
// Input: byte 0 picks the options, the rest is the file's bytes.
//   bit 0..1  decode target: full size, or a JPEG DCT-scaled decode for a
//             small target (1/2, 1/4, 1/8 scale paths)
//   bit 2     also crop to a 3:2 aspect ratio before resizing
//   bit 3     rewrite the CRC of every PNG chunk first: libpng rejects a chunk
//             with a wrong CRC, so mutated chunk contents would otherwise
//             never reach the decoder
// Properties checked on every accepted image: the pixel buffer matches the
// size, the size stays within the pixel limit, a full-size decode agrees with
// the header probe, and a reduced decode is never smaller than its target.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tabby/image/codecs.h"
#include "tabby/image/decode.h"
#include "tabby/image/resize.h"

namespace {

// Small enough that a decompression bomb cannot exhaust the fuzzer's memory
// limit, large enough for every real-world header to pass.
constexpr uint64_t kFuzzMaxPixels = 1u << 22;

struct Target {
  int width = 0, height = 0;
};

Target target_for(uint8_t mode) {
  switch (mode & 3) {
    case 1: return {7, 5};
    case 2: return {31, 17};
    case 3: return {64, 64};
    default: return {};
  }
}

// PNG: 8-byte signature, then chunks of length (4, big-endian), type (4),
// data (length), CRC-32 of type + data (4).
void fix_png_crcs(std::string& png) {
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const auto* p = reinterpret_cast<const uint8_t*>(png.data()) + at;
    const uint32_t length = tabby::detail::load_be32(p);
    if (length > png.size() - at - 12) break;
    const uint32_t crc = static_cast<uint32_t>(crc32(0, p + 4, length + 4));
    for (int i = 0; i < 4; ++i) png[at + 8 + length + i] = static_cast<char>(crc >> (24 - 8 * i));
    at += 12 + length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tabby::fuzz::silence_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tabby;
  // Not a structured binding: C++17 lambdas cannot capture those.
  const fuzz::ModeAndPayload input = fuzz::split_mode(data, size);
  const uint8_t mode = input.mode;
  std::string file(input.payload);
  if ((mode & 8) && sniff_format(reinterpret_cast<const uint8_t*>(file.data()), file.size()) == ImageFormat::Png) {
    fix_png_crcs(file);
  }
  // An exact-size heap copy (a std::string keeps a spare NUL byte after its
  // end), so that AddressSanitizer sees a read even one byte too far.
  const std::vector<uint8_t> copy(file.begin(), file.end());
  const uint8_t* bytes = copy.data();
  const size_t n = copy.size();

  // Sniffing must never read past the end, whatever the length.
  const ImageFormat sniffed = sniff_format(bytes, n);
  (void)format_name(sniffed);

  ImageInfo info;
  const bool probed = fuzz::refuses_only_with_tabby_errors("probe_image", [&] { info = probe_image(bytes, n); });
  if (probed) {
    TABBY_FUZZ_CHECK(info.width > 0 && info.height > 0, "probe returned a non-positive size");
    TABBY_FUZZ_CHECK(info.format == sniffed, "probe and sniff disagree on the format");
  }

  const Target target = target_for(mode);
  DecodeOptions options;
  options.max_pixels = kFuzzMaxPixels;
  options.target_width = target.width;
  options.target_height = target.height;
  Image image;
  const bool decoded =
      fuzz::refuses_only_with_tabby_errors("decode_image", [&] { image = decode_image(bytes, n, options); });
  if (!decoded) return 0;

  TABBY_FUZZ_CHECK(image.width > 0 && image.height > 0, "decoded an empty image");
  TABBY_FUZZ_CHECK(image.pixels.size() == static_cast<size_t>(image.width) * image.height * 3,
                   "pixel buffer size does not match width x height x 3");
  TABBY_FUZZ_CHECK(static_cast<uint64_t>(image.width) * image.height <= kFuzzMaxPixels,
                   "decoded past the pixel limit");
  TABBY_FUZZ_CHECK(is_decodable(sniffed), "decoded a format that is_decodable() refuses");
  if (probed && target.width == 0) {
    TABBY_FUZZ_CHECK(image.width == info.width && image.height == info.height,
                     "full-size decode " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                         " differs from the probed " + std::to_string(info.width) + "x" +
                         std::to_string(info.height));
  }
  if (probed && target.width > 0) {
    // A reduced decode shrinks only while it still covers the target (or is full size).
    const bool full = image.width == info.width && image.height == info.height;
    TABBY_FUZZ_CHECK(full || (image.width >= target.width && image.height >= target.height),
                     "scaled decode fell below its target");
  }

  // What the pipeline does next: optional aspect crop, then bilinear resize.
  fuzz::refuses_only_with_tabby_errors("resize", [&] {
    const int out_w = target.width > 0 ? target.width : 9;
    const int out_h = target.height > 0 ? target.height : 6;
    Image resized;
    if (mode & 4) {
      const CropBox box = center_crop_box(image.width, image.height, 3, 2);
      TABBY_FUZZ_CHECK(box.width > 0 && box.height > 0 && box.x >= 0 && box.y >= 0 &&
                           box.x + box.width <= image.width && box.y + box.height <= image.height,
                       "crop box outside the image");
      resized = Image(out_w, out_h);
      resize_bilinear_region_into(image, box, out_w, out_h, resized.pixels.data());
    } else {
      resized = resize_bilinear(image, out_w, out_h);
    }
    TABBY_FUZZ_CHECK(resized.pixels.size() == static_cast<size_t>(out_w) * out_h * 3, "resize size mismatch");
  });
  return 0;
}
