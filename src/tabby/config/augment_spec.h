// The short augmentation notation of `tabby inspect --augment`:
//   flip | flip=horizontal|vertical|both   RandomFlip (flip alone: horizontal)
//   rotation=F                             RandomRotation(F), F of a full turn
//   zoom=F                                 RandomZoom(F)
//   translation=F                          RandomTranslation(F, F)
//   contrast=F                             RandomContrast(F)
// separated by commas, as model layers.
#pragma once

#include <string>
#include <vector>

#include "tabby/config/model_spec.h"

namespace tabby {

// The layers `spec` names, in order. UsageError for anything else.
std::vector<LayerSpec> parse_augment_spec(const std::string& spec);

}  // namespace tabby
