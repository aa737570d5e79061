// Discriminative learning rates: the trainable parameters split into groups
// that train at different fractions of the run's rate. The head (every layer
// outside the backbone, and a backbone's own classifier when it is the head)
// trains at the full rate; the backbone's fine-tuning units (nn/zoo/backbone.h)
// at backbone_lr_ratio, each unit below the last at layer_decay times the
// unit above it — fastai's slice(lo, hi) spread as a geometric progression,
// timm's layer-wise decay.
#pragma once

#include <vector>

#include "tabby/config/train_options.h"
#include "tabby/nn/network.h"
#include "tabby/train/optimizer.h"

namespace tabby {

// Groups in a fixed order (head first, then the backbone's units from the top
// down); groups without trainable parameters are left out. One group when the
// options ask for no difference or the network has no backbone.
std::vector<ParamGroup> parameter_groups(nn::NetworkImpl& net, const TrainOptions& options);

std::vector<double> lr_ratios(const std::vector<ParamGroup>& groups);

}  // namespace tabby
