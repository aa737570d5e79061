// The per-epoch record of a run: history.csv (epoch, loss, accuracy,
// val_loss, val_accuracy, lr, seconds, phase), the same columns Keras'
// CSVLogger writes plus the learning rate, wall time and training phase.
#pragma once

#include <nlohmann/json.hpp>

#include <limits>
#include <string>
#include <vector>

namespace tabby {

struct EpochRecord {
  int epoch = 0;  // 1-based, counted across phases
  double loss = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double lr = 0;
  double seconds = 0;
  std::string phase = "train";  // "train" or "fine-tune"

  // The value of a monitor name ("val_loss", "accuracy", ...); NaN if absent.
  double metric(const std::string& name) const;
};

std::string history_to_csv(const std::vector<EpochRecord>& history);
// Parses history.csv; a malformed file is a tabby::Error naming `source`.
std::vector<EpochRecord> history_from_csv(const std::string& text, const std::string& source);
nlohmann::json history_to_json(const std::vector<EpochRecord>& history);
std::vector<EpochRecord> history_from_json(const nlohmann::json& j);

}  // namespace tabby
