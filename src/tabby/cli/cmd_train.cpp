// tabby train: flags -> TrainJob -> run_train_job; prints the results.
#include <fmt/format.h>

#include <memory>

#include "tabby/api/distributed_job.h"
#include "tabby/api/report_job.h"
#include "tabby/api/train_job.h"
#include "tabby/cli/commands.h"
#include "tabby/cli/train_option_flags.h"
#include "tabby/config/recipes.h"
#include "tabby/launch/local_launcher.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/threads.h"

namespace tabby::cli {

namespace fs = std::filesystem;

namespace {

// The report of a run that had already finished: the one it has, else written
// now (the process may have been killed while writing it); nullopt if none.
std::optional<fs::path> report_of_finished_run(const fs::path& run_dir, bool no_report) {
  const fs::path html = run_dir / run_report_files::kReport;
  std::error_code ec;
  if (fs::is_regular_file(html, ec)) return html;
  if (no_report) return std::nullopt;
  try {
    return write_run_report(run_dir).html;
  } catch (const Error& e) {
    log::warn(std::string("could not write the report: ") + e.what(),
              "write it later with `tabby report " + run_dir.string() + "`");
    return std::nullopt;
  }
}

void print_outcome(const TrainOutcome& outcome, const std::optional<fs::path>& report, bool json) {
  if (json) {
    nlohmann::json j = to_json(outcome.results);
    j["run"] = outcome.run_dir.string();
    if (report) j["report"] = report->string();
    print_json(j.dump(2));
    return;
  }
  std::string line = fmt::format("run: {}\n", outcome.run_dir.string());
  if (outcome.validation) {
    line += fmt::format("validation: accuracy {:.4f}, loss {:.4f} ({} images, {} weights)\n",
                        outcome.validation->accuracy, outcome.validation->loss, outcome.validation->count,
                        enum_name(outcome.fit.kept));
  }
  if (outcome.test) {
    line += fmt::format("test: accuracy {:.4f}, loss {:.4f} ({} images)\n", outcome.test->accuracy,
                        outcome.test->loss, outcome.test->count);
  }
  if (report) line += fmt::format("report: {}\n", report->string());
  std::fputs(line.c_str(), stdout);
}

struct TrainFlags {
  TrainJob job;
  std::string image_size;
  std::string resume;
  bool freeze = false, include_top = false, json = false, no_report = false;
  // Flags of the training options; only the ones given are applied.
  std::unique_ptr<TrainOptionFlags> options;
  std::string recipe;
  // Data parallel
  bool distributed = false;
  int nproc_per_node = 0;
  double dist_timeout = 300;
  std::string gloo_iface;
};

// --nproc-per-node N: this command again as N ranks on this machine.
int launch_ranks(const TrainFlags& f) {
  LocalLaunchOptions o;
  o.nproc = f.nproc_per_node;
  o.command = rank_command(program_arguments(), own_executable(), std::max(1, default_thread_count() / o.nproc));
  // The others notice a dead rank in their next exchange (every step) and stop by themselves within
  // seconds; one busy elsewhere (decoding a large data set) is stopped after this.
  o.grace = std::chrono::milliseconds(static_cast<int64_t>(std::min(f.dist_timeout, 10.0) * 1000));
  const LaunchResult result = launch_local_ranks(o);
  if (result.first_failed < 0) return 0;
  std::string what = result.ranks[static_cast<size_t>(result.first_failed)].describe();
  for (const RankExit& e : result.ranks) {
    if (!e.ok() && e.rank != result.first_failed) what += "; then " + e.describe();
  }
  const fs::path run = f.resume.empty() ? f.job.out : fs::path(f.resume);
  std::error_code ec;
  const std::string hint =
      fs::is_regular_file(run / "checkpoint.safetensors", ec)
          ? fmt::format("the run's last checkpoint is kept: continue it with `tabby train --resume {} "
                        "--nproc-per-node {}`",
                        run.string(), f.nproc_per_node)
          : "the ranks' own errors are above";
  // A usage mistake every rank made (a missing --data, say) stays a usage error.
  if (result.exit_code() == 2) throw UsageError("data-parallel training failed: " + what, hint);
  throw Error("data-parallel training failed: " + what, hint);
}

// Whether a run given to --resume has finished; data parallel, as rank 0 sees it.
std::optional<TrainOutcome> finished(const std::string& run, Collective* group) {
  if (!group) return finished_run(run);
  std::optional<TrainOutcome> done;
  if (group->is_main()) done = finished_run(run);
  if (group->broadcast_bytes(done ? "1" : "0") == "0") return std::nullopt;
  if (!done) done = TrainOutcome{};
  return done;
}

void check_distributed_flags(const TrainFlags& f, const CLI::App& app) {
  const bool parallel = f.distributed || f.nproc_per_node > 0;
  for (const char* flag : {"--dist-timeout", "--gloo-iface"}) {
    if (app.count(flag) && !parallel) {
      throw UsageError(std::string(flag) + " applies only to data-parallel training",
                       "add --nproc-per-node N, or --distributed under torchrun");
    }
  }
  if (f.distributed && app.count("--nproc-per-node")) {
    throw UsageError("--nproc-per-node starts its own ranks; --distributed is for a rank started by another launcher",
                     "give one of the two");
  }
  if (app.count("--nproc-per-node") && f.nproc_per_node < 1) {
    throw UsageError("--nproc-per-node must be at least 1");
  }
  if (app.count("--dist-timeout") && !(f.dist_timeout > 0)) throw UsageError("--dist-timeout must be positive");
}

// Trains (or resumes) as the flags say, alone or as one rank; rank 0 reports.
int train(TrainFlags& flags, const CLI::App& app) {
  TrainFlags* f = &flags;
  Collective* group = f->job.group;
  const bool main_rank = group == nullptr || group->is_main();
  TrainOutcome outcome;
  if (!f->resume.empty()) {
    if (auto done = finished(f->resume, group)) {
      if (!main_rank) return 0;
      const int epochs = done->results.epochs_completed;
      log::infof("run {} has already finished{}: nothing to resume", done->run_dir.string(),
                 epochs > 0 ? fmt::format(" ({} epochs)", epochs) : "");
      print_outcome(*done, report_of_finished_run(done->run_dir, f->no_report), f->json);
      return 0;
    }
    const std::string device = group || app.count("--device") ? f->job.device : "";
    outcome = resume_train_job(f->resume, device, f->job.threads, group);
  } else {
    if (f->job.model.empty()) throw UsageError("--model is required", "e.g. --model tutorial-cnn or --model mobilenet_v2");
    if (f->job.data.data.empty()) throw UsageError("--data is required", "a folder with one sub-folder per class");
    if (!f->image_size.empty()) {
      auto [h, w] = parse_image_size(f->image_size);
      f->job.image_height = h;
      f->job.image_width = w;
    }
    if (f->freeze) f->job.freeze_backbone = true;
    if (f->include_top) f->job.include_top = true;
    f->job.train_overrides = f->options->given();
    f->job.recipe = f->recipe;
    outcome = run_train_job(f->job);
  }
  if (!main_rank) return 0;  // rank 0 reports
  std::optional<fs::path> report;
  if (!f->no_report) {
    if (auto written = report_after_training(outcome)) report = written->html;
  }
  print_outcome(outcome, report, f->json);
  return 0;
}

}  // namespace

Command add_train(CLI::App& root) {
  auto f = std::make_shared<TrainFlags>();
  CLI::App* app = root.add_subcommand("train", "Train a model on a folder of images (one sub-folder per class)");
  auto* g = "Data";
  app->add_option("--data", f->job.data.data, "Training data: a folder with one sub-folder per class, or a CSV of path,label")
      ->group(g);
  app->add_option("--split", f->job.data.split, "TFDS-style slice of --data, e.g. 'train[:40%]'")->group(g);
  app->add_option("--val", f->job.data.val, "Validation folder (or CSV)")->group(g);
  app->add_option("--val-split", f->job.data.val_split, "Validation slice of --data, e.g. 'train[40%:50%]'")->group(g);
  app->add_option("--validation-split", f->job.data.validation_split,
                  "Hold out this fraction of the training data for validation (seeded, like Keras)")
      ->group(g);
  app->add_option("--test", f->job.data.test, "Test folder (or CSV), evaluated after training")->group(g);
  app->add_option("--test-split", f->job.data.test_split, "Test slice of --data, e.g. 'train[50%:60%]'")->group(g);
  app->add_option("--test-fraction", f->job.data.test_fraction, "Hold out this fraction of --data as a test set")
      ->group(g);
  app->add_flag("--stratify", f->job.data.stratify, "Keep class proportions in fraction splits (always on for CSV)")
      ->group(g);
  app->add_option("--image-size", f->image_size, "Input size N or HxW (default: the model's, else its backbone's, e.g. 224 or 300 for efficientnet_b3; else 180)")
      ->group(g);
  app->add_flag("--crop-to-aspect", f->job.crop_to_aspect, "Centre-crop to the target aspect ratio before resizing")
      ->group(g);
  add_data_cache_flags(app, g);

  g = "Model";
  app->add_option("--model", f->job.model,
                  "Preset (tutorial-cnn, tutorial-cnn-augmented, mobilenet_v2, resnet50, ...) or a model .toml file")
      ->group(g);
  app->add_option("--weights", f->job.weights, "Backbone weights: imagenet, none, or a .safetensors/.pth file")->group(g);
  app->add_flag("--freeze-backbone", f->freeze, "Freeze the backbone (batch norm in inference mode)")->group(g);
  app->add_flag("--include-top", f->include_top, "Use the backbone's own classifier (torchvision's fine-tuning recipe)")
      ->group(g);

  app->add_option("--recipe", f->recipe,
                  "Settings bundled for a common case (see the README), under the flags given: " + recipe_names())
      ->group(g);
  f->options = std::make_unique<TrainOptionFlags>(app);

  g = "Run";
  app->add_option("--out", f->job.out, "Run folder to write (model, weights, history, checkpoints)")->group(g);
  app->add_flag("--overwrite", f->job.overwrite, "Replace a run already in --out")->group(g);
  app->add_option("--resume", f->resume,
                  "Continue an interrupted run from its last checkpoint (a finished run: nothing to do)")
      ->group(g);
  app->add_option("--device", f->job.device, "auto, cpu, cuda or cuda:N (default auto)")->group(g);
  app->add_option("--threads", f->job.threads, "CPU threads (default: all cores)")->group(g);
  app->add_flag("--json", f->json, "Print the results as JSON on stdout")->group(g);
  app->add_flag("--no-report", f->no_report, "Do not write RUN/report.html (see tabby report) at the end")->group(g);
  app->add_option("--stop-after", f->job.stop_after_epochs, "Testing aid: stop as if killed after N epochs")
      ->group("");
  app->add_option("--save-rank-weights", f->job.rank_weights_dir,
                  "Testing aid: every rank of a data-parallel run saves its final weights in this folder")
      ->group("");

  g = "Data parallel";
  app->add_option("--nproc-per-node", f->nproc_per_node,
                  "Train with N processes on this machine, each on its share of every batch (like torchrun "
                  "--standalone); one optimiser step takes N x --batch-size images")
      ->group(g);
  app->add_flag("--distributed", f->distributed,
                "Be one rank of a data-parallel job started by torchrun or a scheduler (reads RANK, WORLD_SIZE, "
                "LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT)")
      ->group(g);
  app->add_option("--dist-timeout", f->dist_timeout,
                  "Seconds to wait for every rank to join, and for any one exchange, before stopping with an error "
                  "naming the missing rank (default 300)")
      ->group(g);
  app->add_option("--gloo-iface", f->gloo_iface,
                  "Network interface Gloo uses (default: GLOO_SOCKET_IFNAME, else the one that reaches MASTER_ADDR)")
      ->group(g);

  Action run = [f, app]() -> int {
    check_distributed_flags(*f, *app);
    if (f->nproc_per_node > 0) return launch_ranks(*f);
    std::optional<JoinedJob> joined;
    if (f->distributed) {
      DistributedJobOptions o;
      o.timeout = std::chrono::milliseconds(static_cast<int64_t>(f->dist_timeout * 1000));
      o.gloo_iface = f->gloo_iface;
      o.device = f->job.device;
      o.threads = f->job.threads;
      joined = join_distributed_job(o);
      f->job.group = joined->group.get();
      f->job.device = joined->device;
      f->job.threads = joined->threads;
    }
    try {
      return train(*f, *app);
    } catch (const std::exception& e) {
      if (joined) joined->report_failure(e.what());
      throw;
    }
  };
  return {app, run};
}



}  // namespace tabby::cli
