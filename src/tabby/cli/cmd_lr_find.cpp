// tabby lr-find: the learning-rate range test on a model and its training data.
#include <fmt/format.h>

#include <memory>
#include <set>

#include "tabby/api/train_job.h"
#include "tabby/cli/commands.h"
#include "tabby/cli/train_option_flags.h"
#include "tabby/config/recipes.h"
#include "tabby/util/error.h"

namespace tabby::cli {

namespace {

struct LrFindFlags {
  TrainJob job;
  LrFindOptions find;
  std::string image_size;
  bool freeze = false, json = false;
  std::unique_ptr<TrainOptionFlags> options;
};

int lr_find(LrFindFlags& f) {
  if (f.job.model.empty()) throw UsageError("--model is required", "e.g. --model tutorial-cnn or --model mobilenet_v2");
  if (f.job.data.data.empty()) throw UsageError("--data is required", "a folder with one sub-folder per class");
  if (!f.image_size.empty()) {
    auto [h, w] = parse_image_size(f.image_size);
    f.job.image_height = h;
    f.job.image_width = w;
  }
  if (f.freeze) f.job.freeze_backbone = true;
  f.job.train_overrides = f.options->given();
  const LrFindOutcome outcome = run_lr_find_job(f.job, f.find);
  const LrFindResult& r = outcome.result;
  if (f.json) {
    print_json(nlohmann::json{{"suggested_lr", r.suggested_lr},
                              {"minimum_lr", r.minimum_lr},
                              {"steepest_lr", r.steepest_lr},
                              {"diverged", r.diverged},
                              {"steps", r.lrs.size()},
                              {"out", f.job.out.string()}}
                   .dump(2));
    return 0;
  }
  std::string text = fmt::format(
      "suggested learning rate: {:.1e} (the middle of the longest fall of the loss; lowest loss at {:.1e}, "
      "steepest fall at {:.1e})\n",
      r.suggested_lr, r.minimum_lr, r.steepest_lr);
  text += fmt::format("curve: {}\n", (f.job.out / "lr_find.csv").string());
  if (!outcome.chart.empty()) text += fmt::format("chart: {}\n", outcome.chart.string());
  text += fmt::format("train with it: tabby train ... --lr {:.1e}\n", r.suggested_lr);
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

Command add_lr_find(CLI::App& root) {
  auto f = std::make_shared<LrFindFlags>();
  CLI::App* app = root.add_subcommand(
      "lr-find", "Find a learning rate: train briefly while the rate grows, and suggest one from the loss curve");
  const char* g = "Data";
  app->add_option("--data", f->job.data.data, "Training data: a folder with one sub-folder per class, or a CSV")
      ->group(g);
  app->add_option("--split", f->job.data.split, "TFDS-style slice of --data, e.g. 'train[:80%]'")->group(g);
  app->add_option("--image-size", f->image_size, "Input size N or HxW (default: the model's)")->group(g);
  add_data_cache_flags(app, g);
  g = "Model";
  app->add_option("--model", f->job.model, "Preset or model .toml file, as for tabby train")->group(g);
  app->add_option("--weights", f->job.weights, "Backbone weights: imagenet, none, or a file")->group(g);
  app->add_flag("--freeze-backbone", f->freeze, "Freeze the backbone")->group(g);
  app->add_option("--recipe", f->job.recipe, "Test with a recipe's settings: " + recipe_names())->group(g);
  g = "Range test";
  app->add_option("--start-lr", f->find.start_lr, "First learning rate (default 1e-7)")->group(g);
  app->add_option("--end-lr", f->find.end_lr, "Last learning rate (default 10)")->group(g);
  app->add_option("--steps", f->find.steps, "Steps, one batch each (default 100)")->group(g);
  app->add_option("--out", f->job.out, "Folder for lr_find.csv, lr_find.json and lr_find.png")->group(g);
  app->add_option("--device", f->job.device, "auto, cpu, cuda or cuda:N (default auto)")->group(g);
  app->add_option("--threads", f->job.threads, "CPU threads (default: all cores)")->group(g);
  app->add_flag("--json", f->json, "Print the suggestion as JSON")->group(g);
  // Only what shapes one training step: schedules, epochs and callbacks mean
  // nothing to a range test, and a flag that is accepted but ignored misleads.
  f->options = std::make_unique<TrainOptionFlags>(
      app, std::set<std::string>{"batch_size", "optimizer", "momentum", "weight_decay", "seed", "precision",
                                 "channels_last", "backbone_lr_ratio", "layer_decay", "label_smoothing", "augment"});
  Action run = [f]() -> int { return lr_find(*f); };
  return {app, run};
}

}  // namespace tabby::cli
