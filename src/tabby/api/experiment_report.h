// The experiment report (`tabby report EXPERIMENT_DIR`, also written at the
// end of `tabby run`): data summary, the comparison table, every model's
// curves overlaid, and for each model its curves, metrics and confusion
// matrix. Runs without a cached evaluation are evaluated (options.evaluate)
// and their own reports written.
#pragma once

#include <filesystem>

#include "tabby/api/report_options.h"

namespace tabby {

ReportResult write_experiment_report(const std::filesystem::path& experiment_dir, const ReportOptions& options = {});

}  // namespace tabby
