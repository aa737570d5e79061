// The short augmentation notation of `tabby inspect --augment` (and of
// `tabby train --augment`), items separated by commas, applied in order:
//   flip | flip=horizontal|vertical|both   RandomFlip (flip alone: horizontal)
//   rotation=F                             RandomRotation(F), F of a full turn
//   zoom=F                                 RandomZoom(F)
//   translation=F                          RandomTranslation(F, F)
//   contrast=F                             RandomContrast(F)
//   crop | crop=S | crop=S1-S2             RandomResizedCrop, area fraction in
//                                          [S, 1] or [S1, S2] (crop: 0.08-1),
//                                          aspect 3/4 to 4/3, same output size
//   jitter=F | jitter=B,C,S[,H]            RandomColorJitter (torchvision
//                                          ColorJitter): F for brightness,
//                                          contrast and saturation; or each,
//                                          0 = off; hue H in [0, 0.5]
//   trivial                                TrivialAugmentWide
//   randaugment | randaugment=N[,M]        RandAugment, N ops (2) at magnitude
//                                          M of 31 (9)
// A bare number after an item continues that item's values
// ("jitter=0.4,0.4,0.4,0.1,flip" is jitter with four values, then flip).
#pragma once

#include <string>
#include <vector>

#include "tabby/config/model_spec.h"

namespace tabby {

// The layers `spec` names, in order. UsageError for anything else.
std::vector<LayerSpec> parse_augment_spec(const std::string& spec);

}  // namespace tabby
