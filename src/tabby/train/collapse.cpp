#include "tabby/train/collapse.h"

#include <fmt/format.h>

namespace tabby {

std::optional<int64_t> single_predicted_class(const std::vector<int64_t>& predicted_counts,
                                              const std::vector<int64_t>& label_counts) {
  int label_classes = 0;
  for (int64_t n : label_counts) label_classes += n > 0 ? 1 : 0;
  if (label_classes < 2) return std::nullopt;
  std::optional<int64_t> only;
  for (size_t c = 0; c < predicted_counts.size(); ++c) {
    if (predicted_counts[c] == 0) continue;
    if (only) return std::nullopt;
    only = static_cast<int64_t>(c);
  }
  return only;
}

CollapseDetector::CollapseDetector(std::vector<int64_t> label_counts, std::vector<std::string> class_names,
                                   CollapseState state)
    : label_counts_(std::move(label_counts)), class_names_(std::move(class_names)), state_(state) {}

std::optional<std::string> CollapseDetector::observe(int epoch, const std::vector<int64_t>& predicted_counts,
                                                     int64_t images, double accuracy) {
  const auto only = single_predicted_class(predicted_counts, label_counts_);
  state_.one_class_since = only ? (state_.one_class_since > 0 ? state_.one_class_since : epoch) : 0;
  // A first epoch can start this way and recover; a second in a row rarely does.
  if (!only || epoch - state_.one_class_since + 1 < kEpochs || state_.collapsed_epoch != 0) return std::nullopt;
  state_.collapsed_epoch = state_.one_class_since;
  const auto c = static_cast<size_t>(*only);
  return collapse_warning(state_.one_class_since, c < class_names_.size() ? class_names_[c] : std::to_string(c),
                          images, accuracy);
}

std::string collapse_warning(int since_epoch, const std::string& class_name, int64_t images, double accuracy) {
  return fmt::format(
      "since epoch {} the model has predicted '{}' for all {} validation images (val_accuracy {:.4f} is only that "
      "class's share): its output no longer depends on the input, and training seldom recovers from that",
      since_epoch, class_name, images, accuracy);
}

std::string collapse_hint() {
  return "this usually means every ReLU has died after too large an update: scale the inputs (a Rescaling layer "
         "first, e.g. scale = 0.00392156862745098) or lower the learning rate (--lr), then train again";
}

std::string one_class_evaluation_note(const std::string& class_name, int64_t images, double accuracy) {
  return fmt::format(
      "the model predicted '{}' for all {} images (accuracy {:.4f} is only that class's share): its output does not "
      "depend on the input",
      class_name, images, accuracy);
}

}  // namespace tabby
