// Separable bilinear resize in TensorFlow's arithmetic, centre crops, and the
// pipeline's decode-crop-resize call.
//
// Per output column and row we precompute the two source indices and the
// interpolation weight once; each source row is interpolated horizontally
// once (a two-row cache serves consecutive output rows), then pairs of those
// rows are blended vertically. The float32 formulas are TensorFlow's own
// (top + (bottom - top) * lerp), so results match tf.image.resize before
// rounding.
#include "tabby/image/resize.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tabby/image/decode.h"
#include "tabby/util/error.h"

namespace tabby {

namespace {

// Source taps of every output position along one axis.
struct Taps {
  std::vector<int> lower;  // source index (times `multiplier`)
  std::vector<int> upper;
  std::vector<float> lerp;  // weight of `upper`
};

// tf.image.resize, half_pixel_centers=True: the centre of output pixel i sits
// at source coordinate (i + 0.5) * in/out - 0.5, clamped to the edge pixels.
Taps compute_taps(int in_size, int out_size, int multiplier) {
  Taps taps;
  taps.lower.resize(static_cast<size_t>(out_size));
  taps.upper.resize(static_cast<size_t>(out_size));
  taps.lerp.resize(static_cast<size_t>(out_size));
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int i = 0; i < out_size; ++i) {
    const float in = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
    const float in_floor = std::floor(in);
    const int lower = std::max(static_cast<int>(in_floor), 0);
    const int upper = std::min(static_cast<int>(std::ceil(in)), in_size - 1);
    taps.lower[static_cast<size_t>(i)] = lower * multiplier;
    taps.upper[static_cast<size_t>(i)] = upper * multiplier;
    taps.lerp[static_cast<size_t>(i)] = in - in_floor;
  }
  return taps;
}

void check_target(int width, int height) {
  if (width <= 0 || height <= 0) {
    throw Error("cannot resize to " + std::to_string(width) + "x" + std::to_string(height) +
                    ": the size must be positive",
                "give an image size such as 180x180");
  }
}

// Resizes the in_width x in_height window starting at `src` (rows `stride`
// bytes apart) to out_width x out_height, into dst.
void resize_window(const uint8_t* src, size_t stride, int in_width, int in_height, int out_width, int out_height,
                   uint8_t* dst) {
  const Taps xs = compute_taps(in_width, out_width, 3);
  const Taps ys = compute_taps(in_height, out_height, 1);
  const size_t row_floats = static_cast<size_t>(out_width) * 3;

  // Two horizontally resized source rows, and which source row each holds.
  std::vector<float> cache(2 * row_floats);
  int cached_row[2] = {-1, -1};

  const int* x_lower = xs.lower.data();
  const int* x_upper = xs.upper.data();
  const float* x_lerp = xs.lerp.data();
  auto interpolate_row = [&](int source_row, float* __restrict out) {
    const uint8_t* __restrict s = src + static_cast<size_t>(source_row) * stride;
    for (int x = 0; x < out_width; ++x, out += 3) {
      const uint8_t* left = s + x_lower[x];
      const uint8_t* right = s + x_upper[x];
      const float f = x_lerp[x];
      const float l0 = left[0], l1 = left[1], l2 = left[2];
      out[0] = l0 + (static_cast<float>(right[0]) - l0) * f;
      out[1] = l1 + (static_cast<float>(right[1]) - l1) * f;
      out[2] = l2 + (static_cast<float>(right[2]) - l2) * f;
    }
  };
  // Slot holding `row`, filling the slot not holding `keep` on a miss.
  auto slot_for = [&](int row, int keep) {
    if (cached_row[0] == row) return 0;
    if (cached_row[1] == row) return 1;
    const int slot = cached_row[0] == keep ? 1 : 0;
    interpolate_row(row, cache.data() + slot * row_floats);
    cached_row[slot] = row;
    return slot;
  };

  for (int y = 0; y < out_height; ++y) {
    const int lower = ys.lower[static_cast<size_t>(y)], upper = ys.upper[static_cast<size_t>(y)];
    const float* top = cache.data() + slot_for(lower, upper) * row_floats;
    const float* bottom = cache.data() + slot_for(upper, lower) * row_floats;
    const float f = ys.lerp[static_cast<size_t>(y)];
    uint8_t* out = dst + static_cast<size_t>(y) * row_floats;
    for (size_t i = 0; i < row_floats; ++i) {
      const float v = top[i] + (bottom[i] - top[i]) * f + 0.5f;
      out[i] = static_cast<uint8_t>(std::min(std::max(v, 0.0f), 255.0f));
    }
  }
}

}  // namespace

CropBox center_crop_box(int width, int height, int aspect_width, int aspect_height) {
  if (width <= 0 || height <= 0) throw Error("cannot crop an empty image");
  check_target(aspect_width, aspect_height);
  // Keras' smart_resize, float32 divisions and truncation included.
  const auto crop_height = static_cast<int64_t>(static_cast<float>(static_cast<int64_t>(width) * aspect_height) /
                                                static_cast<float>(aspect_width));
  const auto crop_width = static_cast<int64_t>(static_cast<float>(static_cast<int64_t>(height) * aspect_width) /
                                               static_cast<float>(aspect_height));
  CropBox box;
  box.height = static_cast<int>(std::clamp<int64_t>(crop_height, 1, height));
  box.width = static_cast<int>(std::clamp<int64_t>(crop_width, 1, width));
  box.y = static_cast<int>(static_cast<float>(height - box.height) / 2.0f);
  box.x = static_cast<int>(static_cast<float>(width - box.width) / 2.0f);
  return box;
}

void resize_bilinear_region_into(const Image& src, const CropBox& region, int width, int height, uint8_t* dst) {
  check_target(width, height);
  if (src.empty()) throw Error("cannot resize an empty image");
  if (region.x < 0 || region.y < 0 || region.width <= 0 || region.height <= 0 ||
      region.width > src.width - region.x || region.height > src.height - region.y) {
    throw Error("resize region lies outside the image");
  }
  const size_t stride = static_cast<size_t>(src.width) * 3;
  const uint8_t* origin = src.pixels.data() + static_cast<size_t>(region.y) * stride + static_cast<size_t>(region.x) * 3;
  resize_window(origin, stride, region.width, region.height, width, height, dst);
}

void resize_bilinear_into(const Image& src, int width, int height, uint8_t* dst) {
  resize_bilinear_region_into(src, CropBox{0, 0, src.width, src.height}, width, height, dst);
}

Image resize_bilinear(const Image& src, int width, int height) {
  check_target(width, height);
  Image out(width, height);
  resize_bilinear_into(src, width, height, out.pixels.data());
  return out;
}

namespace {

void fit_into(const Image& image, int width, int height, bool crop_to_aspect, uint8_t* dst) {
  const CropBox box = crop_to_aspect ? center_crop_box(image.width, image.height, width, height)
                                     : CropBox{0, 0, image.width, image.height};
  resize_bilinear_region_into(image, box, width, height, dst);
}

// Choosing the DCT scale from the full image is enough when cropping too: the
// crop keeps the full extent of the limiting side, so a decoded image >= the
// target in both sides leaves a crop >= the target as well.
DecodeOptions decode_options_for(int width, int height) {
  check_target(width, height);
  DecodeOptions options;
  options.target_width = width;
  options.target_height = height;
  return options;
}

}  // namespace

void load_image_resized(const std::filesystem::path& path, int width, int height, bool crop_to_aspect,
                        uint8_t* dst) {
  fit_into(decode_image_file(path, decode_options_for(width, height)), width, height, crop_to_aspect, dst);
}

void decode_image_resized(const uint8_t* data, size_t size, int width, int height, bool crop_to_aspect, uint8_t* dst) {
  fit_into(decode_image(data, size, decode_options_for(width, height)), width, height, crop_to_aspect, dst);
}

}  // namespace tabby
