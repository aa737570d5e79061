// Image encoding for tests and fuzz seeds: an 8-bit RGB tabby::Image to the
// bytes of a PNG or JPEG file, through libpng and libjpeg. tabby itself only
// reads images (its charts are PNGs that cairo writes).
#pragma once

#include <string>

#include "tabby/image/image.h"

namespace tabby {

// Lossless, zlib level 6. Throws tabby::Error for an empty image.
std::string encode_png(const Image& image);

// Baseline JPEG with 4:2:0 chroma subsampling; quality 1..100 (clamped).
std::string encode_jpeg(const Image& image, int quality = 90);

}  // namespace tabby
