// The pretrained backbones tabby knows, one row each: the torchvision name,
// where its ImageNet weights come from (torchvision's file, pinned by URL and
// full SHA-256) and the input normalisation those weights were trained with.
// The engine's zoo (nn/zoo/backbone.cpp) builds each row's structure under the
// same name; a test checks that the two agree.
#pragma once

#include <array>
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

struct BackboneInfo {
  std::string name;         // torchvision's, e.g. "mobilenet_v2"
  std::string description;  // for help texts
  WeightsSource imagenet;   // IMAGENET1K_V1
  ImageNormalization normalization;
};

// torchvision's ImageNet statistics, which all the table's weights use.
const ImageNormalization& imagenet_normalization();

// Every row, in the order help texts list them.
const std::vector<BackboneInfo>& backbone_table();
// The row of `name`, or nullptr.
const BackboneInfo* find_backbone(const std::string& name);
// The names, in table order.
const std::vector<std::string>& backbone_arch_names();

}  // namespace tabby
