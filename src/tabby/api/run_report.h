// The run report: one self-contained HTML file per run (`tabby report RUN`,
// also written at the end of `tabby train`), with its charts also saved as
// PNG files beside it (RUN/charts: accuracy, loss, class_counts, confusion,
// predictions, mistakes). Sections: data, model summary, training curves and
// history, then the evaluation (run_evaluation.h): metrics, classification
// report, confusion matrix, prediction grid and top losses.
//
// Builds without cairo write the report with tables and text only.
#pragma once

#include <filesystem>
#include <optional>

#include "tabby/api/evaluate_job.h"
#include "tabby/api/report_options.h"
#include "tabby/api/run_evaluation.h"
#include "tabby/api/train_job.h"

namespace tabby {

// The run report (see above). Errors: not a run folder.
ReportResult write_run_report(const std::filesystem::path& run_dir, const ReportOptions& options = {});

// The run report showing `evaluation`, to `html` (unless empty) with charts in
// `charts_dir` (unless empty); `missing_evaluation_note` says why there is none.
ReportResult render_run_report(const std::filesystem::path& run_dir, const std::optional<RunEvaluation>& evaluation,
                               const std::filesystem::path& html, const std::filesystem::path& charts_dir,
                               const std::string& missing_evaluation_note = "");

// The run report with the evaluation `tabby evaluate` just made (other data
// than the run's own): HTML to `html` and/or charts to `charts_dir` (either
// may be empty). Does not touch the run's evaluation.json.
ReportResult write_evaluation_report(const std::filesystem::path& run_dir, const EvaluateOutcome& outcome,
                                     const std::filesystem::path& html, const std::filesystem::path& charts_dir);

// The end of `tabby train` and of each model of `tabby run`: caches the final
// evaluation (cache_training_evaluation) and writes the run report. Never
// throws: a failure is a warning (the trained run is what matters) and the
// result is nullopt.
std::optional<ReportResult> report_after_training(const TrainOutcome& outcome);

}  // namespace tabby
