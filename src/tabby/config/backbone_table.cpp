#include "tabby/config/backbone_table.h"

namespace tabby {

const ImageNormalization& imagenet_normalization() {
  static const ImageNormalization n{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}, 1.0 / 255.0};
  return n;
}

// torchvision puts the first 8 hex digits of each file's SHA-256 in its name
// (torch.hub checks only those); the full digests below are the values recorded
// for these exact files by several independent projects that pin them, and each
// agrees with its name's prefix (a unit test checks that). VGG16, SqueezeNet 1.1
// and MobileNetV2 predate PyTorch 1.6 and use the legacy (non-zip) torch.save
// format, which read_pth also understands.
const std::vector<BackboneInfo>& backbone_table() {
  static const std::vector<BackboneInfo> table = [] {
    const std::string base = "https://download.pytorch.org/models/";
    auto row = [&](const char* name, const char* description, const char* file, const char* sha256) {
      return BackboneInfo{name, description, {file, base + file, sha256}, imagenet_normalization()};
    };
    return std::vector<BackboneInfo>{
        row("mobilenet_v2", "MobileNetV2 1.0", "mobilenet_v2-b0353104.pth",
            "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"),
        row("mobilenet_v3_large", "MobileNetV3 Large", "mobilenet_v3_large-8738ca79.pth",
            "8738ca797c879b547d18bbd15da5736ff2557b2036a9af72225393ca61759a04"),
        row("mobilenet_v3_small", "MobileNetV3 Small", "mobilenet_v3_small-047dcff4.pth",
            "047dcff4addef86ea5bc2eff13c9614dc11f47ab1160d0a71a25e7db994f4e1f"),
        row("resnet18", "ResNet-18", "resnet18-f37072fd.pth",
            "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec"),
        row("resnet50", "ResNet-50", "resnet50-0676ba61.pth",
            "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a"),
        row("vgg16", "VGG-16", "vgg16-397923af.pth", "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"),
        row("squeezenet1_1", "SqueezeNet 1.1", "squeezenet1_1-b8a52dc0.pth",
            "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b"),
    };
  }();
  return table;
}

const BackboneInfo* find_backbone(const std::string& name) {
  for (const auto& row : backbone_table()) {
    if (row.name == name) return &row;
  }
  return nullptr;
}

const std::vector<std::string>& backbone_arch_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& row : backbone_table()) out.push_back(row.name);
    return out;
  }();
  return names;
}

}  // namespace tabby
