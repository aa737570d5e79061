// tabby run EXPERIMENT.toml: trains the experiment's models one after another
// on the same split and prints their comparison.
#include <memory>

#include "tabby/api/experiment.h"
#include "tabby/cli/commands.h"

namespace tabby::cli {

Command add_run(CLI::App& root) {
  auto job = std::make_shared<ExperimentJob>();
  auto epochs = std::make_shared<int>(0);
  auto no_report = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  CLI::App* app = root.add_subcommand(
      "run", "Train several models on the same data split (an experiment file) and compare them");
  app->add_option("experiment", job->file, "Experiment file, e.g. experiments/cats-vs-dogs-tutorial.toml")->required();
  app->add_option("--out", job->out, "Output folder (default: the file's `out`, else runs/NAME)");
  app->add_option("--epochs", *epochs, "Train every model (and every fine-tuning phase) this many epochs instead");
  app->add_option("--only", job->only, "Train only these models (by name; the comparison lists all)")->delimiter(',');
  app->add_flag("--retrain", job->retrain, "Retrain models whose earlier runs were trained with other settings");
  app->add_flag("--no-report", *no_report, "Do not write OUT/report.html");
  app->add_option("--device", job->device, "auto, cpu, cuda or cuda:N (default auto)");
  app->add_option("--threads", job->threads, "CPU threads (default: all cores)");
  app->add_flag("--json", *json, "Print the comparison as JSON");
  add_data_cache_flags(app);
  app->add_option("--stop-after", job->stop_after_epochs, "Testing aid: each model stops as if killed after N epochs")
      ->group("");
  app->footer(
      "Running the same file again keeps finished models, resumes interrupted ones from their last checkpoint, "
      "and refuses (without --retrain) to mix runs trained with other settings.");
  Action run = [job, epochs, no_report, json, app]() -> int {
    if (app->count("--epochs")) job->epochs = *epochs;
    job->report = !*no_report;
    ExperimentOutcome out = run_experiment(*job);
    if (*json) {
      nlohmann::json j = {{"experiment", out.name},   {"dir", out.dir.string()},
                          {"report", out.report.string()}, {"trained", out.trained},
                          {"resumed", out.resumed},   {"kept", out.skipped},
                          {"failed", out.failed},     {"models", comparison_json(out.rows)}};
      print_json(j.dump(2));
    } else {
      std::string text = "experiment " + out.name + ": " + out.dir.string() + "\n\n" + comparison_markdown(out.rows);
      if (!out.report.empty()) text += "\nreport: " + out.report.string() + "\n";
      std::fputs(text.c_str(), stdout);
    }
    return out.failed > 0 ? 1 : 0;
  };
  return {app, run};
}

}  // namespace tabby::cli
