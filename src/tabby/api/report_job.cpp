#include "tabby/api/report_job.h"

#include "tabby/api/experiment.h"
#include "tabby/run/run_record.h"
#include "tabby/util/error.h"

namespace tabby {

ReportResult write_report(const std::filesystem::path& path, const ReportOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw UsageError("'" + path.string() + "' does not exist",
                     "give a run folder (tabby train --out) or an experiment folder (tabby run --out)");
  }
  if (is_experiment_dir(path)) return write_experiment_report(path, options);
  if (is_run_dir(path)) return write_run_report(path, options);
  throw UsageError("'" + path.string() + "' is neither a run folder nor an experiment folder",
                   "a run folder holds run.json and model.toml; an experiment folder holds experiment.json");
}

}  // namespace tabby
