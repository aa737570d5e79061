// Batched random augmentation on tensors, on whatever device the batch is on
// (Keras preprocessing-layer semantics; see shared/TUTORIALS.md):
//   RandomFlip("horizontal")   mirrors each image left-right with probability 1/2
//   RandomRotation(f)          rotates by an angle uniform in [-f*2pi, f*2pi]
//   RandomZoom(h, w)           scales by 1+z, z uniform in [-h, h] (positive zooms out)
//   RandomTranslation(h, w)    shifts by a fraction of the height/width in [-h, h]
//   RandomContrast(f)          (x - mean) * c + mean, c uniform in [1-f, 1+f]
// Geometric transforms are fused into one affine_grid + grid_sample per batch,
// bilinear, with Keras' fill modes (reflect, constant, nearest).
//
// The torchvision-style augmentations below (RandomResizedCrop, colour jitter,
// TrivialAugmentWide, RandAugment) follow torchvision's definitions, drawn per
// image: every image of a batch gets its own parameters, drawn as tensors on
// the batch's device, and the ops run batched (images that drew the same op
// are gathered with index_select and written back with index_copy_).
// Their deterministic parts take "unit" images: (B,3,H,W) float in [0, 1],
// torchvision's float convention; the layers map the model's value range
// (e.g. [0, 255] before a Rescaling layer) to and from it.
//
// Random numbers come from LibTorch's default generator, which the trainer
// seeds per step, so a run is reproducible.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

namespace tabby::nn {

enum class FillMode { Reflect, Constant, Nearest };
FillMode parse_fill_mode(const std::string& name);

// Each range is [lo, hi]; a Keras single factor f means [-f, f].
struct AffineAugment {
  bool rotate = false;
  std::pair<double, double> rotation{0, 0};  // fractions of a full turn
  bool zoom = false;
  std::pair<double, double> zoom_height{0, 0}, zoom_width{0, 0};
  bool zoom_keep_aspect = true;  // width_factor not given: one factor for both
  bool translate = false;
  std::pair<double, double> translate_height{0, 0}, translate_width{0, 0};
  FillMode fill = FillMode::Reflect;
};

// x is (B,C,H,W) float. Returns a new tensor.
torch::Tensor random_flip(const torch::Tensor& x, bool horizontal, bool vertical);
torch::Tensor random_affine(const torch::Tensor& x, const AffineAugment& spec);
torch::Tensor random_contrast(const torch::Tensor& x, std::pair<double, double> factor);

// Builds the (B,2,3) affine_grid matrices for given per-image angles (radians),
// zoom factors and translations (fractions), mapping output to input
// coordinates in affine_grid's normalised space (align_corners=false).
torch::Tensor affine_matrices(const torch::Tensor& angle, const torch::Tensor& zoom_y, const torch::Tensor& zoom_x,
                              const torch::Tensor& shift_y, const torch::Tensor& shift_x, int64_t height,
                              int64_t width);

// Sampling grids from (B,2,3) float64 matrices in torchvision's pixel
// convention: output pixel (x, y), measured from the image centre with pixel
// centres at half-integers, samples the input at M * (x, y, 1) in the same
// coordinates. Returns affine_grid's (B,H,W,2) for `sizes` (B,C,H,W).
torch::Tensor pixel_affine_grid(const torch::Tensor& matrices, c10::IntArrayRef sizes, c10::ScalarType dtype);

// torchvision's _get_inverse_affine_matrix as F.affine uses it on tensors, per
// image ((B,) float64 each): rotation in degrees counter-clockwise,
// translation in pixels, shears in radians, centre relative to the image
// centre in pixels. Returns (B,2,3) for pixel_affine_grid.
torch::Tensor torchvision_inverse_affine(const torch::Tensor& angle, const torch::Tensor& tx, const torch::Tensor& ty,
                                         const torch::Tensor& shear_x, const torch::Tensor& shear_y,
                                         const torch::Tensor& cx, const torch::Tensor& cy);

// --- RandomResizedCrop ------------------------------------------------------

// Per-image crop boxes with torchvision's RandomResizedCrop.get_params: 10
// tries of an area fraction uniform in `scale` and an aspect ratio (w/h)
// log-uniform in `ratio`, rounded to whole pixels, the first that fits the
// image kept at a uniform random position; none fits: the centred crop of the
// whole image with its aspect clamped into `ratio`. Returns (B,4) int64 rows
// (top, left, height, width).
torch::Tensor random_resized_crop_boxes(int64_t batch, int64_t height, int64_t width, std::pair<double, double> scale,
                                        std::pair<double, double> ratio, const torch::Device& device);

// Each image's box resampled to the input's H x W, bilinear, as torchvision's
// resized_crop on tensors without antialiasing (samples clamp to the box's
// pixels at its edges). boxes is (B,4) as above.
torch::Tensor resized_crop(const torch::Tensor& x, const torch::Tensor& boxes);

// --- Colour (unit images; factors are (B,) tensors, one per image) -----------

torch::Tensor rgb_to_grey(const torch::Tensor& u);  // (B,1,H,W), ITU-R 601-2 luma as torchvision
torch::Tensor adjust_brightness(const torch::Tensor& u, const torch::Tensor& factor);  // blend with black
torch::Tensor adjust_contrast(const torch::Tensor& u, const torch::Tensor& factor);    // with the grey mean
torch::Tensor adjust_saturation(const torch::Tensor& u, const torch::Tensor& factor);  // with the grey image
torch::Tensor adjust_hue(const torch::Tensor& u, const torch::Tensor& shift);          // shift in [-0.5, 0.5]
torch::Tensor adjust_sharpness(const torch::Tensor& u, const torch::Tensor& factor);   // with a 3x3 blur

// torchvision's ColorJitter with per-image factors and a per-image order:
// order is (B,4) int64, a permutation of 0 brightness, 1 contrast,
// 2 saturation, 3 hue for each image (torchvision draws one randperm(4) per
// call, i.e. per image when applied image by image).
torch::Tensor color_jitter(const torch::Tensor& u, const torch::Tensor& brightness, const torch::Tensor& contrast,
                           const torch::Tensor& saturation, const torch::Tensor& hue, const torch::Tensor& order);

struct ColorJitterRanges {
  // Factor ranges; a disabled op has {1, 1} (hue: {0, 0}).
  std::pair<double, double> brightness{1, 1}, contrast{1, 1}, saturation{1, 1}, hue{0, 0};
};
torch::Tensor random_color_jitter(const torch::Tensor& u, const ColorJitterRanges& ranges);

// --- TrivialAugmentWide / RandAugment ----------------------------------------

// torchvision's op set, in its order (the op index of the functions below).
enum class AugmentOp : int64_t {
  Identity, ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast, Sharpness,
  Posterize, Solarize, AutoContrast, Equalize
};
constexpr int64_t kAugmentOpCount = 14;
const char* augment_op_name(AugmentOp op);

// torchvision's magnitude bins: (14, bins) float64, unsigned. "Wide" is
// TrivialAugmentWide's space; otherwise RandAugment's, whose translations are
// a fraction of the image size. Units: shear as tan(angle), translation in
// pixels, rotation in degrees, brightness/colour/contrast/sharpness as
// factor - 1, posterize as bits kept, solarize as a threshold out of 255.
torch::Tensor augment_magnitudes(bool wide, int64_t bins, int64_t height, int64_t width);

// Applies op[i] with signed magnitude[i] (units above) to image i: (B,)
// int64 and (B,) float64 tensors. Geometric ops fill with black (0), as
// torchvision's default fill; `bilinear` false is torchvision's default
// nearest sampling. Posterize and equalize quantise as torchvision's
// convert_image_dtype does (floor of u * 255.999) and give multiples of 1/255.
torch::Tensor apply_augment_ops(const torch::Tensor& u, const torch::Tensor& op, const torch::Tensor& magnitude,
                                bool bilinear);

torch::Tensor posterize(const torch::Tensor& u, const torch::Tensor& bits);
torch::Tensor solarize(const torch::Tensor& u, const torch::Tensor& threshold);  // threshold in [0, 1]
torch::Tensor autocontrast(const torch::Tensor& u);
torch::Tensor equalize(const torch::Tensor& u);

// One TrivialAugmentWide draw per image: an op uniform over the 14, a
// magnitude bin uniform over `bins`, a random sign for the signed ops.
torch::Tensor trivial_augment_wide(const torch::Tensor& u, int64_t bins, bool bilinear);
// RandAugment: `num_ops` rounds, each an op uniform over the 14 per image, at
// bin `magnitude` of `bins` with a random sign.
torch::Tensor rand_augment(const torch::Tensor& u, int64_t num_ops, int64_t magnitude, int64_t bins, bool bilinear);

}  // namespace tabby::nn
