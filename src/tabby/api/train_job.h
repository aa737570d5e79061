// `tabby train` as a library call: resolve the model, options and data,
// decode the images once, train with checkpoints into a run folder, keep the
// chosen weights and evaluate them. The CLI only fills a TrainJob.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>

#include "tabby/train/lr_finder.h"
#include <optional>
#include <string>

#include "tabby/api/data_source.h"
#include "tabby/config/train_options.h"
#include "tabby/distributed/collective.h"
#include "tabby/run/run_record.h"
#include "tabby/inference/evaluate.h"
#include "tabby/train/trainer.h"

namespace tabby {

struct TrainJob {
  std::string model;                 // preset name or model file
  DataArgs data;
  std::optional<int64_t> image_height, image_width;
  bool crop_to_aspect = false;
  nlohmann::json train_overrides = nlohmann::json::object();  // [train] keys given as flags
  std::string recipe;                // config/recipes.h; empty: none
  // Backbone overrides (flags): weights "imagenet"/"none"/FILE, freezing, top.
  std::optional<std::string> weights;
  std::optional<bool> freeze_backbone;
  std::optional<bool> include_top;
  std::string device = "auto";
  int threads = 0;                   // 0: all cores
  std::filesystem::path out;
  bool overwrite = false;
  int stop_after_epochs = 0;         // test hook (see FitContext)
  std::filesystem::path rank_weights_dir;  // test hook (see FitContext)
  // Data-parallel training with the ranks of this group (not owned); null:
  // this process alone. Every rank runs the same job; rank 0 writes the run.
  Collective* group = nullptr;
};

struct TrainOutcome {
  std::filesystem::path run_dir;
  FitResult fit;
  std::optional<EvalResult> validation;  // of the kept weights
  std::optional<EvalResult> test;
  RunResults results;                    // what run.json records as "results"
};

// On ranks other than 0 of a data-parallel job the outcome holds only `fit`.
TrainOutcome run_train_job(const TrainJob& job);
// Continues an interrupted run from its last checkpoint (same data, options
// and seed as recorded in run.json). `device` empty: the run's own setting.
// With a group, rank 0 reads the run folder and sends it to the others, and
// the run may continue on another number of ranks than it started with.
TrainOutcome resume_train_job(const std::filesystem::path& run_dir, const std::string& device, int threads,
                              Collective* group = nullptr);
// For a run folder whose training has finished: its recorded results (run_dir and
// results set, nothing evaluated). nullopt while it is unfinished; tabby::Error
// when `run_dir` is not a run. Lets `train --resume` of a finished run (killed
// while it wrote its report, say) succeed with nothing to do.
std::optional<TrainOutcome> finished_run(const std::filesystem::path& run_dir);

// The learning-rate range test (train/lr_finder.h) on the model and training
// data `job` names, with its options and recipe; writes the curve to
// `out`/lr_find.csv, lr_find.json and (with cairo) lr_find.png.
struct LrFindOutcome {
  LrFindResult result;
  std::filesystem::path chart;  // empty without cairo
};
LrFindOutcome run_lr_find_job(const TrainJob& job, const LrFindOptions& find);

// Sets LibTorch's intra-op threads (0: all cores) and returns the count used.
int configure_threads(int threads);

}  // namespace tabby
