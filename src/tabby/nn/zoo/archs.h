// Constructors of the individual zoo architectures (internal: use
// make_backbone). Each mirrors torchvision 0.14's module tree, so names,
// shapes, batch-norm eps/momentum and forward computations agree.
#pragma once

#include "tabby/nn/zoo/backbone.h"

namespace tabby::nn::zoo {

Backbone make_mobilenet_v2(bool include_top, int64_t num_classes);
// large: mobilenet_v3_large, else mobilenet_v3_small.
Backbone make_mobilenet_v3(bool large, bool include_top, int64_t num_classes);
// depth 18 (BasicBlock [2,2,2,2]) or 50 (Bottleneck [3,4,6,3]).
Backbone make_resnet(int depth, bool include_top, int64_t num_classes);
Backbone make_vgg16(bool include_top, int64_t num_classes);
Backbone make_squeezenet1_1(bool include_top, int64_t num_classes);

}  // namespace tabby::nn::zoo
