#include "tabby/config/backbone_table.h"

namespace tabby {

const ImageNormalization& imagenet_normalization() {
  static const ImageNormalization n{{0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}, 1.0 / 255.0};
  return n;
}

// torchvision puts the first 8 hex digits of each file's SHA-256 in its name
// (torch.hub checks only those); the full digests below are the values recorded
// for these exact files by independent projects that pin them, and each
// agrees with its name's prefix (a unit test checks that). VGG16, SqueezeNet 1.1
// and MobileNetV2 predate PyTorch 1.6 and use the legacy (non-zip) torch.save
// format, which read_pth also understands.
//
// EfficientNet B0-B3: torchvision 0.14 names these files
// efficientnet_bN_rwightman-<prefix>.pth with prefixes that are not the files'
// digests (they came from timm's originals); torchvision 0.15 renamed them to
// their true prefixes, which are the names used here. No full digest of the
// B1 and B2 files (bac287d4, c35c1473) nor of RegNetY-400MF (c65dace8) was
// found recorded anywhere: those three are checked against the 8 hex digits
// of their names, exactly what torch.hub checks (download.h's sha256_matches
// takes a prefix), until someone records their full digests.
const std::vector<BackboneInfo>& backbone_table() {
  static const std::vector<BackboneInfo> table = [] {
    const std::string base = "https://download.pytorch.org/models/";
    const EvalPreprocessing classic{256, 224, ResizeInterpolation::bilinear};
    auto weights = [&](const char* file, const char* sha256) {
      return std::optional<WeightsSource>(WeightsSource{file, base + file, sha256});
    };
    auto row = [&](const char* name, const char* description, std::optional<WeightsSource> imagenet,
                   EvalPreprocessing eval = {256, 224, ResizeInterpolation::bilinear}, double stochastic_depth = 0.0) {
      return BackboneInfo{name,         description, std::move(imagenet), imagenet_normalization(), eval,
                          eval.crop,    stochastic_depth};
    };
    const auto bicubic = ResizeInterpolation::bicubic;
    std::vector<BackboneInfo> rows{
        row("mobilenet_v2", "MobileNetV2 1.0",
            weights("mobilenet_v2-b0353104.pth", "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889")),
        row("mobilenet_v3_large", "MobileNetV3 Large",
            weights("mobilenet_v3_large-8738ca79.pth",
                    "8738ca797c879b547d18bbd15da5736ff2557b2036a9af72225393ca61759a04")),
        row("mobilenet_v3_small", "MobileNetV3 Small",
            weights("mobilenet_v3_small-047dcff4.pth",
                    "047dcff4addef86ea5bc2eff13c9614dc11f47ab1160d0a71a25e7db994f4e1f")),
        row("resnet18", "ResNet-18",
            weights("resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec")),
        row("resnet50", "ResNet-50",
            weights("resnet50-0676ba61.pth", "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a")),
        row("vgg16", "VGG-16",
            weights("vgg16-397923af.pth", "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0")),
        row("squeezenet1_1", "SqueezeNet 1.1",
            weights("squeezenet1_1-b8a52dc0.pth", "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b")),
        row("efficientnet_b0", "EfficientNet-B0",
            weights("efficientnet_b0_rwightman-7f5810bc.pth",
                    "7f5810bc96def8f7552d5b7e68d53c4786f81167d28291b21c0d90e1fca14934"),
            {256, 224, bicubic}, 0.2),
        row("efficientnet_b1", "EfficientNet-B1", weights("efficientnet_b1_rwightman-bac287d4.pth", "bac287d4"),
            {256, 240, bicubic}, 0.2),
        row("efficientnet_b2", "EfficientNet-B2", weights("efficientnet_b2_rwightman-c35c1473.pth", "c35c1473"),
            {288, 288, bicubic}, 0.2),
        row("efficientnet_b3", "EfficientNet-B3",
            weights("efficientnet_b3_rwightman-b3899882.pth",
                    "b3899882250c22946d0229d266049fcd133c169233530b36b9ffa7983988362f"),
            {320, 300, bicubic}, 0.2),
        row("efficientnet_v2_s", "EfficientNetV2-S",
            weights("efficientnet_v2_s-dd5fe13b.pth",
                    "dd5fe13b1d60ec15317ccc8ca158186e134d3366c3dde9cb9a4e301f2dc66c74"),
            {384, 384, ResizeInterpolation::bilinear}, 0.2),
        row("convnext_tiny", "ConvNeXt-Tiny",
            weights("convnext_tiny-983f1562.pth", "983f1562536e84ff750a1576fb08e54de751dbf2e17c0d8a4a13704341fdcd3d"),
            {236, 224, ResizeInterpolation::bilinear}, 0.1),
        row("regnet_y_400mf", "RegNetY-400MF", weights("regnet_y_400mf-c65dace8.pth", "c65dace8"), classic),
        row("vit_b_16", "ViT-B/16 (224x224 input only)",
            weights("vit_b_16-c867db91.pth", "c867db91d3e12c6cbadabb610d73c24a546bf82d8c03a9fea34f43a712ddb0e9"),
            classic),
    };
    rows.back().fixed_image_size = 224;
    return rows;
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
