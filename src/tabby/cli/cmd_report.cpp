// tabby report RUN|EXPERIMENT: writes the self-contained HTML report of a run
// folder or of an experiment folder.
#include <memory>

#include "tabby/api/report_job.h"
#include "tabby/cli/commands.h"

namespace tabby::cli {

Command add_report(CLI::App& root) {
  auto options = std::make_shared<ReportOptions>();
  auto path = std::make_shared<std::string>();
  auto no_charts = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  CLI::App* app = root.add_subcommand(
      "report", "Write one self-contained HTML report of a run (tabby train) or an experiment (tabby run)");
  app->add_option("path", *path, "A run folder or an experiment folder")->required();
  app->add_option("--out", options->out, "The HTML file to write (default: PATH/report.html)");
  app->add_flag("--no-charts", *no_charts, "Do not also save the charts as PNG files in PATH/charts");
  app->add_flag("--reevaluate", options->reevaluate,
                "Evaluate the kept weights again even when PATH/evaluation.json is up to date");
  app->add_option("--grid-size", options->grid_size, "Predictions shown in the grid (default 16)");
  app->add_option("--device", options->device, "auto, cpu, cuda or cuda:N (when the run must be evaluated)");
  app->add_option("--threads", options->threads, "CPU threads (default: all cores)");
  app->add_flag("--json", *json, "Print what was written as JSON");
  Action run = [options, path, no_charts, json]() -> int {
    options->charts = !*no_charts;
    ReportResult r = write_report(*path, *options);
    if (*json) {
      nlohmann::json charts = nlohmann::json::array();
      for (const auto& c : r.charts) charts.push_back(c.string());
      print_json(nlohmann::json{{"report", r.html.string()}, {"charts", charts}, {"evaluated", r.evaluated}}.dump(2));
    } else {
      std::fputs(("report: " + r.html.string() + "\n").c_str(), stdout);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace tabby::cli
