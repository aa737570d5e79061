// A cropped copy of an image (see image_crop.h).
#include "support/image_crop.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tabby/image/resize.h"

namespace tabby::testing {

Image center_crop_to_aspect(const Image& src, int aspect_width, int aspect_height) {
  const CropBox box = center_crop_box(src.width, src.height, aspect_width, aspect_height);
  Image out(box.width, box.height);
  for (int y = 0; y < box.height; ++y) {
    const uint8_t* from = src.row(box.y + y) + static_cast<size_t>(box.x) * 3;
    std::copy(from, from + static_cast<size_t>(box.width) * 3, out.row(y));
  }
  return out;
}

}  // namespace tabby::testing
