// The per-epoch record of a run: history.csv (epoch, loss, accuracy,
// val_loss, val_accuracy, lr, seconds, phase), the same columns Keras'
// CSVLogger writes plus the learning rate, wall time and training phase.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "tabby/config/train_options.h"
#include "tabby/util/enum_names.h"

namespace tabby {

// A run trains in one phase, or two when it fine-tunes a backbone afterwards.
enum class TrainPhase { train, fine_tune };
TABBY_ENUM_NAMES(TrainPhase, {TrainPhase::train, "train"}, {TrainPhase::fine_tune, "fine-tune"});

struct EpochRecord {
  int epoch = 0;  // 1-based, counted across phases
  double loss = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double lr = 0;
  double seconds = 0;
  TrainPhase phase = TrainPhase::train;

  // The value of a monitor; NaN if absent.
  double metric(Monitor monitor) const;
};

std::string history_to_csv(const std::vector<EpochRecord>& history);
// Parses history.csv; a malformed file is a tabby::Error naming `source`.
std::vector<EpochRecord> history_from_csv(const std::string& text, const std::string& source);
// RUN/history.csv parsed, or no epochs when the run has no such file (yet).
std::vector<EpochRecord> read_history_if_present(const std::filesystem::path& run_dir);
nlohmann::json history_to_json(const std::vector<EpochRecord>& history);
// tabby::Error naming `source` when an entry is malformed.
std::vector<EpochRecord> history_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace tabby
