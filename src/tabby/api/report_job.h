// `tabby report PATH`: the report of a run folder (run_report.h) or of an
// experiment folder (experiment_report.h), whichever PATH is.
#pragma once

#include <filesystem>

#include "tabby/api/experiment_report.h"
#include "tabby/api/report_options.h"
#include "tabby/api/run_evaluation.h"
#include "tabby/api/run_report.h"

namespace tabby {

// tabby::Error for anything that is neither a run nor an experiment folder.
ReportResult write_report(const std::filesystem::path& path, const ReportOptions& options = {});

}  // namespace tabby
