// What `tabby report` and the reports written after training take and give,
// and the files they write into a run or experiment folder:
//
//   DIR/report.html      the report: one self-contained HTML file
//   DIR/charts/*.png     its charts, also as files
//   RUN/evaluation.json  the evaluation a run report shows (run_evaluation.h)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tabby {

namespace run_report_files {
inline const char* kReport = "report.html";
inline const char* kEvaluation = "evaluation.json";
inline const char* kCharts = "charts";
}  // namespace run_report_files

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

}  // namespace tabby
