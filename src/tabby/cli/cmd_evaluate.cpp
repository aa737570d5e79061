// tabby evaluate RUN --data DIR: metrics of a trained run on labelled data.
#include <memory>

#include "tabby/api/evaluate_job.h"
#include "tabby/api/report_job.h"
#include "tabby/cli/commands.h"
#include "tabby/util/error.h"

namespace tabby::cli {

Command add_evaluate(CLI::App& root) {
  auto job = std::make_shared<EvaluateJob>();
  auto json = std::make_shared<bool>(false);
  auto run_path = std::make_shared<std::string>();
  auto report_file = std::make_shared<std::string>();
  auto charts_dir = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand("evaluate", "Evaluate a trained run on labelled images");
  app->add_option("run", *run_path, "Run folder (the --out of tabby train)")->required();
  app->add_option("--data", job->data, "Folder with one sub-folder per class, or a CSV of path,label")->required();
  app->add_option("--split", job->split, "TFDS-style slice of --data, e.g. 'train[50%:60%]'");
  app->add_option("--tta", job->tta, "Test-time augmentation: none (default) or flip (each image's mirror averaged in: usually a few tenths of a point of accuracy for twice the compute)");
  app->add_option("--batch-size", job->batch_size, "Batch size (default: the run's)");
  app->add_option("--top-losses", job->top_losses, "List the N most confidently wrong images (default 5)");
  app->add_option("--weights", job->weights, "Weights file inside the run (weights.safetensors or best.safetensors)");
  app->add_option("--device", job->device, "auto, cpu, cuda or cuda:N");
  app->add_option("--threads", job->threads, "CPU threads (default: all cores)");
  app->add_flag("--json", *json, "Print the results as JSON");
  add_data_cache_flags(app);
  app->add_option("--report", *report_file,
                  "Also write an HTML report of this evaluation (metrics, confusion matrix, prediction grid)");
  app->add_option("--charts", *charts_dir, "Also save the evaluation's charts (confusion, predictions) as PNG here");
  Action run = [job, json, run_path, report_file, charts_dir]() -> int {
    job->run = *run_path;
    EvaluateOutcome out = run_evaluate_job(*job);
    if (!report_file->empty() || !charts_dir->empty()) {
      ReportResult r = write_evaluation_report(job->run, out, *report_file, *charts_dir);
      if (!r.html.empty()) std::fprintf(stderr, "report: %s\n", r.html.string().c_str());
    }
    if (*json) {
      print_json(out.to_json().dump(2));
    } else {
      std::fputs(out.to_text().c_str(), stdout);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace tabby::cli
