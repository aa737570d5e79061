// Reports: one self-contained HTML file per run (`tabby report RUN`, also
// written at the end of `tabby train`) and per experiment (`tabby report
// EXPERIMENT_DIR`, also written at the end of `tabby run`), with the charts
// also saved as PNG files beside it.
//
//   RUN/report.html           data summary, model summary table, training
//                             curves, test metrics, classification report,
//                             confusion matrix, prediction grid, top losses
//   RUN/charts/*.png          accuracy, loss, class_counts, confusion,
//                             predictions, mistakes
//   RUN/evaluation.json       the evaluation the report shows (test data when
//                             the run has it, else validation), cached so a
//                             report does not re-run the model; stale once
//                             weights.safetensors is newer
//
// Builds without cairo (charts_available() false) write the report with
// tables and text only.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/api/evaluate_job.h"
#include "tabby/api/train_job.h"

namespace tabby {

namespace run_report_files {
inline const char* kReport = "report.html";
inline const char* kEvaluation = "evaluation.json";
inline const char* kCharts = "charts";
}  // namespace run_report_files

// One shown prediction.
struct PredictionSample {
  std::filesystem::path file;
  int label = 0;
  int predicted = 0;
  double probability = 0;  // of the predicted class
};

// An evaluation as a report shows it: the metrics (EvaluateOutcome; its
// tensors are empty when read back from JSON) and a fixed random sample of
// predictions for the grid.
struct RunEvaluation {
  std::string split;  // "test", "validation", or "evaluation" (tabby evaluate)
  EvaluateOutcome outcome;
  std::vector<PredictionSample> samples;
};

// Picks `grid_size` predictions at random (seeded) from outcome.result
// (which must hold the probabilities; rows map to files through
// result.indices and outcome.paths) for the prediction grid.
RunEvaluation make_run_evaluation(const EvaluateOutcome& outcome, const std::string& split, size_t grid_size = 16,
                                  uint64_t seed = 1337);
nlohmann::json to_json(const RunEvaluation& evaluation);
// tabby::Error naming `source` when the JSON is not an evaluation.
RunEvaluation run_evaluation_from_json(const nlohmann::json& j, const std::string& source);

struct ReportOptions {
  std::filesystem::path out;  // the HTML file; default DIR/report.html
  bool charts = true;         // also save the charts as PNG files (DIR/charts)
  bool evaluate = true;       // evaluate a run when no (fresh) evaluation is cached
  bool reevaluate = false;    // evaluate even when one is cached
  std::string device = "auto";
  int threads = 0;
  size_t grid_size = 16;      // predictions shown in the grid
};

struct ReportResult {
  std::filesystem::path html;
  std::vector<std::filesystem::path> charts;
  bool evaluated = false;  // a run was evaluated to write it
};

// The evaluation a run report shows: the cached RUN/evaluation.json when it
// is fresh, else (options.evaluate) the kept weights evaluated on the run's
// own test data (else its validation data), cached for next time. nullopt
// when the run has neither, or evaluating is off and nothing is cached.
std::optional<RunEvaluation> run_evaluation(const std::filesystem::path& run_dir, const ReportOptions& options,
                                            bool* evaluated = nullptr);

// The run report (see the top of this file). Errors: not a run folder.
ReportResult write_run_report(const std::filesystem::path& run_dir, const ReportOptions& options = {});

// The run report with the evaluation `tabby evaluate` just made (other data
// than the run's own): HTML to `html` and/or charts to `charts_dir` (either
// may be empty). Does not touch the run's evaluation.json.
ReportResult write_evaluation_report(const std::filesystem::path& run_dir, const EvaluateOutcome& outcome,
                                     const std::filesystem::path& html, const std::filesystem::path& charts_dir);

// The end of `tabby train` and of each model of `tabby run`: caches the final
// evaluation from `outcome` (test when there is test data, else validation)
// and writes the run report. The outcome's probabilities are reused when the
// run's files can be matched to their rows (no file was skipped while
// decoding); otherwise the run is evaluated again. Never throws: a failure is
// a warning (the trained run is what matters) and the result is nullopt.
std::optional<ReportResult> report_after_training(const TrainOutcome& outcome);

// The experiment report: data summary, comparison table, overlaid curves,
// and for each model its curves, test metrics and confusion matrix. DIR is a
// `tabby run` output folder. Runs without a cached evaluation are evaluated
// (options.evaluate) and their own reports written.
ReportResult write_experiment_report(const std::filesystem::path& experiment_dir, const ReportOptions& options = {});

// `tabby report PATH`: a run or an experiment folder; tabby::Error for
// anything else.
ReportResult write_report(const std::filesystem::path& path, const ReportOptions& options = {});

}  // namespace tabby
