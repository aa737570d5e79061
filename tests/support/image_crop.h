// A cropped copy of an image, for tests that build the expected result of a
// crop-then-resize (tabby itself resizes the crop window in place:
// resize_bilinear_region_into).
#pragma once

#include "tabby/image/image.h"

namespace tabby::testing {

// The window center_crop_box(src.width, src.height, aspect_width, aspect_height)
// picks, copied into an image of its own.
Image center_crop_to_aspect(const Image& src, int aspect_width, int aspect_height);

}  // namespace tabby::testing
