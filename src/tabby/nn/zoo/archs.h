// The structures of the zoo's architectures, attached by name to the
// registry's entries (config/backbone_table.h). Each architecture file lists
// its own structures beside their code; backbone.cpp collects the lists.
// Each structure mirrors torchvision 0.14's module tree, so names, shapes,
// batch-norm eps/momentum and forward computations agree.
#pragma once

#include "tabby/nn/zoo/backbone.h"

#include <functional>
#include <vector>

namespace tabby::nn::zoo {

// options.stochastic_depth is always set when a structure is built.
using BackboneFactory = std::function<Backbone(const BackboneOptions& options)>;

struct ArchStructure {
  std::string name;  // the registry entry's name
  BackboneFactory build;
};

// One list per architecture file.
std::vector<ArchStructure> mobilenet_v2_structures();
std::vector<ArchStructure> mobilenet_v3_structures();
std::vector<ArchStructure> resnet_structures();
std::vector<ArchStructure> vgg_structures();
std::vector<ArchStructure> squeezenet_structures();
std::vector<ArchStructure> efficientnet_structures();
std::vector<ArchStructure> convnext_structures();
std::vector<ArchStructure> regnet_structures();
std::vector<ArchStructure> vision_transformer_structures();

// Every list above, concatenated.
const std::vector<ArchStructure>& all_structures();

}  // namespace tabby::nn::zoo
