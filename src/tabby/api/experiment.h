// `tabby run EXPERIMENT.toml`: trains the experiment's models one after
// another on the same data split (config/experiment_spec.h has the format)
// and compares them.
//
//   OUT/experiment.json        the experiment as run: its settings and models
//   OUT/<model name>/          each model's run folder (tabby train's layout,
//                              plus experiment-model.json: the settings that
//                              trained it, to tell whether it still matches)
//   OUT/comparison.md|csv|json model, parameters, best validation accuracy,
//                              test accuracy and loss, training time
//   OUT/charts/accuracy.png, loss.png   the models' curves overlaid
//   OUT/report.html            the experiment report
//
// Nothing is lost when an experiment is interrupted: running it again skips
// the models whose runs finished and resumes the others from their last
// checkpoint. A finished run trained with settings that differ from the file
// is never silently reused or replaced: that is an error unless `retrain`.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/config/experiment_spec.h"
#include "tabby/util/enum_names.h"

namespace tabby {

namespace experiment_files {
inline const char* kExperiment = "experiment.json";
inline const char* kModelFingerprint = "experiment-model.json";  // inside each run folder
inline const char* kComparisonMarkdown = "comparison.md";
inline const char* kComparisonCsv = "comparison.csv";
inline const char* kComparisonJson = "comparison.json";
}  // namespace experiment_files

struct ExperimentJob {
  std::filesystem::path file;
  std::filesystem::path out;      // default: the file's `out`, else runs/<name>
  std::optional<int> epochs;      // every model trains this many epochs (and fine-tunes as many)
  std::vector<std::string> only;  // train only these models (the comparison still lists all)
  bool retrain = false;           // retrain models whose finished runs no longer match the file
  std::string device = "auto";
  int threads = 0;
  bool report = true;             // write report.html at the end
  int stop_after_epochs = 0;      // test hook: each model stops as if killed after N epochs
};

// A model's state in the comparison: its run's status (a run created or
// running that is not running now was interrupted), or no run yet.
enum class ComparisonStatus { finished, failed, interrupted, not_run };
TABBY_ENUM_NAMES(ComparisonStatus, {ComparisonStatus::finished, "finished"}, {ComparisonStatus::failed, "failed"},
                 {ComparisonStatus::interrupted, "running (interrupted)"}, {ComparisonStatus::not_run, "not run"});

// One line of the comparison.
struct ComparisonRow {
  std::string name, model, description;
  ComparisonStatus status = ComparisonStatus::not_run;
  std::string error;   // why it failed
  std::filesystem::path run_dir;
  int64_t params = 0, trainable_params = 0;
  int64_t fine_tune_trainable_params = 0;  // 0: no fine-tuning phase
  int epochs = 0;                  // completed
  double best_val_accuracy = -1;   // < 0: none
  int best_val_epoch = 0;
  double val_accuracy = -1, val_loss = -1;    // of the kept weights; < 0: none
  double test_accuracy = -1, test_loss = -1;  // < 0: no test data
  double train_seconds = 0;
  int collapsed_at_epoch = 0;  // > 0: from this epoch on, every validation image got one class
};

struct ExperimentOutcome {
  std::filesystem::path dir;
  std::string name;
  std::vector<ComparisonRow> rows;
  int trained = 0, resumed = 0, skipped = 0, failed = 0;
  std::filesystem::path report;  // empty when not written
};

ExperimentOutcome run_experiment(const ExperimentJob& job);

// True when DIR holds OUT/experiment.json.
bool is_experiment_dir(const std::filesystem::path& dir);
// experiment.json of DIR (tabby::Error when DIR is not an experiment folder).
nlohmann::json read_experiment_json(const std::filesystem::path& dir);
// The comparison rows of an experiment folder, from its runs as they are now.
std::vector<ComparisonRow> read_comparison(const std::filesystem::path& dir);
// One row from a run folder (status "not run" when it is not a run yet).
ComparisonRow comparison_row(const std::filesystem::path& run_dir, const std::string& name,
                             const std::string& model, const std::string& description);

std::string comparison_markdown(const std::vector<ComparisonRow>& rows);
std::string comparison_csv(const std::vector<ComparisonRow>& rows);
nlohmann::json comparison_json(const std::vector<ComparisonRow>& rows);
// Table cells as the report and the markdown show them (header first).
std::vector<std::vector<std::string>> comparison_cells(const std::vector<ComparisonRow>& rows);

}  // namespace tabby
