// An 8-bit RGB image in memory: rows top to bottom, pixels interleaved (HWC).
// Every decoder produces this, whatever the file held (grey, palette, CMYK,
// alpha): tabby's models always see three channels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tabby {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3 bytes

  Image() = default;
  Image(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3) {}

  bool empty() const { return width == 0 || height == 0; }
  uint8_t* row(int y) { return pixels.data() + static_cast<size_t>(y) * width * 3; }
  const uint8_t* row(int y) const { return pixels.data() + static_cast<size_t>(y) * width * 3; }
};

}  // namespace tabby
