#include "tabby/config/presets.h"

#include "tabby/config/backbone_table.h"

#include <iterator>
#include <map>

namespace tabby {

namespace {

struct Preset {
  std::string description;
  std::string toml;
};

// Tutorial A, model 1: no rescaling (raw 0-255 input), valid padding.
const char* kTutorialCnn = R"toml(
name = "tutorial-cnn"
description = "Tutorial model 1: 3 x (Conv2D 32/64/128 + MaxPool), Dense 128, Dropout 0.5 (overfits)"
[[layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 64
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 128
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 128
activation = "relu"
[[layers]]
type = "Dropout"
rate = 0.5
[[layers]]
type = "Dense"
activation = "softmax"
[train]
optimizer = "adam"
lr = 0.001
epochs = 20
)toml";

// Tutorial A, model 2: model 1 behind RandomFlip + RandomRotation(0.1).
const char* kTutorialCnnFlipRotate = R"toml(
name = "tutorial-cnn-flip-rotate"
[[layers]]
type = "RandomFlip"
mode = "horizontal"
[[layers]]
type = "RandomRotation"
factor = 0.1
[[layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 64
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 128
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 128
activation = "relu"
[[layers]]
type = "Dropout"
rate = 0.5
[[layers]]
type = "Dense"
activation = "softmax"
[train]
optimizer = "adam"
lr = 0.001
epochs = 20
)toml";

// Tutorial A, model 3: rescaling to [-1, 1], augmentation, same padding, wider.
const char* kTutorialCnnAugmented = R"toml(
name = "tutorial-cnn-augmented"
[[layers]]
type = "Rescaling"
scale = 0.00784313725490196
offset = -1.0
[[layers]]
type = "RandomFlip"
mode = "horizontal"
[[layers]]
type = "RandomRotation"
factor = 0.1
[[layers]]
type = "Conv2D"
filters = 64
kernel_size = 3
padding = "same"
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 128
kernel_size = 3
padding = "same"
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 256
kernel_size = 3
padding = "same"
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 256
activation = "relu"
[[layers]]
type = "Dropout"
rate = 0.5
[[layers]]
type = "Dense"
activation = "softmax"
[train]
optimizer = "adam"
lr = 0.001
epochs = 20
)toml";

// Tutorial C/D: frozen MobileNetV2 behind flips and rotations, small head;
// then an optional fine-tune of the last blocks.
const char* kTutorialMobilenetV2 = R"toml(
name = "tutorial-mobilenet_v2"
backbone = "mobilenet_v2"
weights = "imagenet"
freeze_backbone = true
pooling = "avg"
[[augment]]
type = "RandomFlip"
mode = "horizontal"
[[augment]]
type = "RandomRotation"
factor = 0.1
[[layers]]
type = "Dropout"
rate = 0.2
[[layers]]
type = "Dense"
[train]
optimizer = "adam"
lr = 0.001
epochs = 10
)toml";

// Tutorial A, model 4: frozen MobileNetV3Large, GAP, Dropout 0.3, Adam 1e-4.
const char* kTutorialMobilenetV3 = R"toml(
name = "tutorial-mobilenet_v3_large"
backbone = "mobilenet_v3_large"
weights = "imagenet"
freeze_backbone = true
pooling = "avg"
[[augment]]
type = "RandomFlip"
mode = "horizontal"
[[augment]]
type = "RandomRotation"
factor = 0.1
[[layers]]
type = "Dropout"
rate = 0.3
[[layers]]
type = "Dense"
[train]
optimizer = "adam"
lr = 0.0001
epochs = 20
)toml";

// Tutorial E, model 5: the 10-class animals CNN (rotation 20 degrees).
const char* kAnimalsCnn = R"toml(
name = "animals-cnn"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "RandomFlip"
mode = "horizontal"
[[layers]]
type = "RandomRotation"
factor = 0.05555555555555555
[[layers]]
type = "Conv2D"
filters = 32
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Conv2D"
filters = 64
kernel_size = 3
activation = "relu"
[[layers]]
type = "MaxPooling2D"
pool_size = 2
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 256
activation = "relu"
[[layers]]
type = "Dropout"
rate = 0.5
[[layers]]
type = "Dense"
activation = "softmax"
[train]
optimizer = "adam"
lr = 0.001
epochs = 10
)toml";

// A network to train from random weights (docs/ACCURACY.md, "From scratch"):
// plain 3x3 convolutions, each block but the last pooled, so that a feature
// reaching the head sees 78 px of a 150 px image (the tutorial networks' three
// blocks see 22 px), and a 41 k-weight Flatten/Dropout/Dense head instead of
// their 21 M-weight Dense layer. Batch norm and global average pooling both
// learned far slower on a few thousand photos; batch 16 gives the one-cycle
// schedule twice the steps.
std::string scratch_cnn_preset() {
  std::string t =
      "name = \"scratch-cnn\"\n[[layers]]\ntype = \"Rescaling\"\nscale = 0.00784313725490196\noffset = -1.0\n"
      "[[layers]]\ntype = \"RandomFlip\"\nmode = \"horizontal\"\n[[layers]]\ntype = \"RandomRotation\"\nfactor = 0.1\n";
  const int filters[] = {32, 64, 128, 256, 256};
  for (size_t i = 0; i < std::size(filters); ++i) {
    if (i > 0) t += "[[layers]]\ntype = \"MaxPooling2D\"\npool_size = 2\n";
    t += "[[layers]]\ntype = \"Conv2D\"\nfilters = " + std::to_string(filters[i]) +
         "\nkernel_size = 3\npadding = \"same\"\nactivation = \"relu\"\n";
  }
  t += "[[layers]]\ntype = \"Flatten\"\n[[layers]]\ntype = \"Dropout\"\nrate = 0.5\n"
       "[[layers]]\ntype = \"Dense\"\nactivation = \"softmax\"\n"
       "[train]\nrecipe = \"scratch\"\nepochs = 20\nbatch_size = 16\n";
  return t;
}

std::string backbone_preset(const std::string& arch) {
  return "name = \"" + arch + "\"\nbackbone = \"" + arch +
         "\"\nweights = \"imagenet\"\npooling = \"avg\"\n"
         "[[layers]]\ntype = \"Dropout\"\nrate = 0.2\n[[layers]]\ntype = \"Dense\"\n";
}

const std::map<std::string, Preset>& presets() {
  static const std::map<std::string, Preset> table = [] {
    std::map<std::string, Preset> t = {
        {"tutorial-cnn", {"tutorial model 1: small CNN on raw pixels, no augmentation", kTutorialCnn}},
        {"tutorial-cnn-flip-rotate",
         {"tutorial model 2: model 1 behind RandomFlip + RandomRotation(0.1)", kTutorialCnnFlipRotate}},
        {"tutorial-cnn-augmented",
         {"tutorial model 3: [-1,1] rescaling, augmentation, same padding, 64/128/256 filters", kTutorialCnnAugmented}},
        {"tutorial-mobilenet_v2",
         {"frozen ImageNet MobileNetV2 + augmentation + GAP/Dropout/Dense head", kTutorialMobilenetV2}},
        {"tutorial-mobilenet_v3_large",
         {"tutorial model 4: frozen ImageNet MobileNetV3Large + GAP/Dropout 0.3/Dense", kTutorialMobilenetV3}},
        {"animals-cnn", {"tutorial E model 5: 2-block CNN for 10 classes", kAnimalsCnn}},
        {"scratch-cnn",
         {"5-conv CNN with a small Flatten/Dense head, trained from random weights with the scratch recipe",
          scratch_cnn_preset()}},
    };
    for (const auto& arch : backbone_arch_names()) {
      t[arch] = {"torchvision " + arch + " (ImageNet weights) + GAP/Dropout 0.2/Dense head", backbone_preset(arch)};
    }
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [k, v] : presets()) names.push_back(k);
  return names;
}

std::optional<std::string> preset_toml(const std::string& name) {
  auto it = presets().find(name);
  if (it == presets().end()) return std::nullopt;
  return it->second.toml;
}

std::string preset_description(const std::string& name) {
  auto it = presets().find(name);
  return it == presets().end() ? std::string() : it->second.description;
}

}  // namespace tabby
