// Spotting a model that has collapsed to one output: every validation image
// predicted as the same class while the data holds several. Training rarely
// recovers from it (typically every ReLU has died after a large update on
// unscaled 0-255 inputs), and its accuracy then equals that class's share,
// which reads like slow learning rather than failure. fit() warns once, after two such
// epochs in a row (a first epoch may start that way and recover).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tabby/run/trainer_state.h"

namespace tabby {

// Watches validation epoch by epoch; its state travels in the checkpoint, so a
// run interrupted between the two epochs of a streak still warns, and a run
// that warned before an interruption does not warn again.
class CollapseDetector {
 public:
  static constexpr int kEpochs = 2;  // epochs in a row of one-class predictions before it warns

  CollapseDetector(std::vector<int64_t> label_counts, std::vector<std::string> class_names, CollapseState state);
  // After epoch `epoch`'s validation: the warning to give, once per run.
  std::optional<std::string> observe(int epoch, const std::vector<int64_t>& predicted_counts, int64_t images,
                                     double accuracy);
  const CollapseState& state() const { return state_; }

 private:
  std::vector<int64_t> label_counts_;
  std::vector<std::string> class_names_;
  CollapseState state_;
};

// The class that received every prediction, when the labels hold at least two
// classes and nothing was predicted as any other; nullopt otherwise.
std::optional<int64_t> single_predicted_class(const std::vector<int64_t>& predicted_counts,
                                              const std::vector<int64_t>& label_counts);

// "since epoch 11 the model has predicted 'Cat' for all 900 validation images ...".
std::string collapse_warning(int since_epoch, const std::string& class_name, int64_t images, double accuracy);

// What usually fixes it.
std::string collapse_hint();

// For an evaluation (no epochs): "the model predicted 'Dog' for all 2326 images ...".
std::string one_class_evaluation_note(const std::string& class_name, int64_t images, double accuracy);

}  // namespace tabby
