// The pretrained backbones tabby knows, one registry entry each, as timm
// registers its models: the torchvision name, a description, where its
// ImageNet weights come from (torchvision's file, pinned by URL and full
// SHA-256), the preprocessing those weights were evaluated with, the image
// size a model built on it defaults to, and training settings of the
// structure (stochastic depth).
//
// This part is torch-free so that the core (model files, presets, downloads)
// can use it. The structure of each entry is attached by name in the engine,
// next to its code in nn/zoo/ (see nn/zoo/archs.h); a test checks that every
// entry has exactly one structure and every structure an entry.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tabby {

struct ImageNormalization {
  std::array<double, 3> mean;  // per RGB channel, after scaling
  std::array<double, 3> std;
  double scale;  // pixel values in [0, 255] are multiplied by this first
};

struct WeightsSource {
  std::string file_name;  // torchvision's, e.g. "resnet18-f37072fd.pth"
  std::string url;
  std::string sha256;  // full hex digest of the file
};

enum class ResizeInterpolation { bilinear, bicubic };

// torchvision's ImageClassification preset of the weights: resize the shorter
// side to `resize`, centre-crop `crop` x `crop`.
struct EvalPreprocessing {
  int64_t resize;
  int64_t crop;
  ResizeInterpolation interpolation;
};

struct BackboneInfo {
  std::string name;         // torchvision's, e.g. "mobilenet_v2"
  std::string description;  // for help texts
  // IMAGENET1K_V1. Absent when no full digest of the file is known: tabby
  // downloads only what it can verify, so such an arch trains from scratch or
  // from a local file.
  std::optional<WeightsSource> imagenet;
  ImageNormalization normalization;
  EvalPreprocessing eval;
  // Side of the square images a model built on it gets by default (torchvision's crop size).
  int64_t default_image_size;
  // Stochastic depth drop probability of the deepest block (earlier blocks get
  // a linearly smaller share); 0 where the architecture has none.
  double stochastic_depth = 0.0;
  // Set when the structure takes only this input size (ViT's position embedding).
  std::optional<int64_t> fixed_image_size = std::nullopt;
};

// torchvision's ImageNet statistics, which all the table's weights use.
const ImageNormalization& imagenet_normalization();

// Every entry, in the order help texts list them.
const std::vector<BackboneInfo>& backbone_table();
// The entry of `name`, or nullptr.
const BackboneInfo* find_backbone(const std::string& name);
// The names, in table order.
const std::vector<std::string>& backbone_arch_names();

}  // namespace tabby
