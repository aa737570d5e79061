// Resizing and aspect-ratio cropping with Keras' semantics, and the one call
// the input pipeline makes per file (decode + crop + resize).
//
// resize_bilinear reproduces the Keras `Resizing` layer / tf.image.resize
// (bilinear, half-pixel centres, no antialiasing), computed in float32 like
// TensorFlow and rounded to the nearest uint8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "tabby/image/image.h"

namespace tabby {

// A window of an image, in pixels.
struct CropBox {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// Keras `crop_to_aspect_ratio=True` (keras.preprocessing.image.smart_resize):
// the largest centred window of a width x height image whose aspect ratio is
// aspect_width : aspect_height. Never empty.
CropBox center_crop_box(int width, int height, int aspect_width, int aspect_height);

Image resize_bilinear(const Image& src, int width, int height);
// The same, writing width*height*3 bytes (HWC RGB) to dst.
void resize_bilinear_into(const Image& src, int width, int height, uint8_t* dst);
// Resizes only the `region` of src (as if it had been cropped first).
void resize_bilinear_region_into(const Image& src, const CropBox& region, int width, int height, uint8_t* dst);

// Decodes `path` (a JPEG at a reduced DCT scale when that still leaves at
// least width x height pixels), optionally crops it to the target's aspect
// ratio, and resizes it to exactly width x height into dst (width*height*3
// bytes). Throws DecodeError (naming the path) for unreadable images.
void load_image_resized(const std::filesystem::path& path, int width, int height, bool crop_to_aspect,
                        uint8_t* dst);
// The same for an encoded image in memory (an upload); DecodeError without a path.
void decode_image_resized(const uint8_t* data, size_t size, int width, int height, bool crop_to_aspect, uint8_t* dst);

}  // namespace tabby
