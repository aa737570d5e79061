// tabby inspect DATA: look at a dataset before training on it (flags ->
// InspectJob -> run_inspect_job; prints text or JSON).
#include <memory>

#include "tabby/api/inspect_job.h"
#include "tabby/cli/commands.h"
#include "tabby/util/error.h"

namespace tabby::cli {

namespace {

struct InspectFlags {
  InspectJob job;
  std::string image_size;
  uint64_t seed = 1337;
  bool json = false;
  size_t max_unreadable = 20;
};

}  // namespace

Command add_inspect(CLI::App& root) {
  auto f = std::make_shared<InspectFlags>();
  CLI::App* app = root.add_subcommand(
      "inspect",
      "Look at a dataset: images per class and split, majority baseline, image sizes, formats, unreadable files");
  app->add_option("data", f->job.data.data,
                  "A folder with one sub-folder per class, a folder of split folders (train/, validation/), or a CSV "
                  "of path,label")
      ->required();
  auto* g = "Splits (as tabby train; without them a folder of split folders is shown split by split)";
  app->add_option("--split", f->job.data.split, "TFDS-style slice, e.g. 'train[:40%]'")->group(g);
  app->add_option("--val", f->job.data.val, "Validation folder (or CSV)")->group(g);
  app->add_option("--val-split", f->job.data.val_split, "Validation slice, e.g. 'train[40%:50%]'")->group(g);
  app->add_option("--validation-split", f->job.data.validation_split, "Fraction held out for validation")->group(g);
  app->add_option("--test", f->job.data.test, "Test folder (or CSV)")->group(g);
  app->add_option("--test-split", f->job.data.test_split, "Test slice, e.g. 'train[50%:60%]'")->group(g);
  app->add_option("--test-fraction", f->job.data.test_fraction, "Fraction held out as a test set")->group(g);
  app->add_flag("--stratify", f->job.data.stratify, "Keep class proportions in fraction splits")->group(g);
  app->add_option("--seed", f->seed, "Seed of the splits and of the samples shown (default 1337)")->group(g);

  g = "Pictures";
  app->add_option("--grid", f->job.grid, "Write a grid of random samples, one labelled row per class (.png or .svg)")
      ->group(g);
  app->add_option("--per-class,--samples", f->job.samples, "Images per class in the --grid (default 3)")->group(g);
  app->add_option("--augment-preview", f->job.preview,
                  "Write a preview of augmented versions of a few images (.png or .svg); needs --augment or --model")
      ->group(g);
  app->add_option("--augment", f->job.augment,
                  "Augmentation to preview, items in order: e.g. \"flip,rotation=0.1,zoom=0.2\" or "
                  "\"crop=0.5,jitter=0.4,trivial\". Items: flip[=horizontal|vertical|both], rotation=F, zoom=F, "
                  "translation=F, contrast=F (Keras layers, F in (0,1]); crop[=S or =S1-S2] (RandomResizedCrop, "
                  "area fraction, default 0.08-1); jitter=F or jitter=B,C,S[,H] (torchvision ColorJitter; hue H "
                  "<= 0.5); trivial (TrivialAugmentWide); randaugment[=N[,M]] (RandAugment, N ops at magnitude M "
                  "of 31, default 2,9)")
      ->group(g);
  app->add_option("--model", f->job.model, "Preview the augmentation layers of this preset or model file")->group(g);
  app->add_option("--preview-images", f->job.preview_images, "Images in the preview (default 2)")->group(g);
  app->add_option("--preview-versions", f->job.preview_versions, "Augmented versions of each (default 5)")->group(g);
  app->add_option("--image-size", f->image_size, "Size the preview resizes to, N or HxW (default: the model's, else 180)")
      ->group(g);
  app->add_option("--charts", f->job.charts_dir, "Also write bar charts of class counts and image sizes to this folder")
      ->group(g);

  g = "Output";
  app->add_flag("--json", f->json, "Print the results as JSON (every unreadable file listed)")->group(g);
  app->add_flag("--verify", f->job.verify,
                "Decode every image fully (slower; also finds files whose pixel data is broken)")
      ->group(g);
  app->add_option("--top-sizes", f->job.top_sizes, "Image sizes listed before 'other' (default 10)")->group(g);
  app->add_option("--max-unreadable", f->max_unreadable, "Unreadable files named in the text output (default 20)")
      ->group(g);
  app->add_option("--threads", f->job.threads, "Threads for reading files (default: all cores)")->group(g);

  Action run = [f, app]() -> int {
    if (app->count("--per-class") && f->job.grid.empty()) {
      throw UsageError("--per-class needs --grid FILE.png to write the grid to");
    }
    if ((!f->job.augment.empty() || !f->job.model.empty()) && f->job.preview.empty()) {
      throw UsageError("--augment / --model need --augment-preview FILE.png to write the preview to");
    }
    if (!f->image_size.empty()) {
      auto [h, w] = parse_image_size(f->image_size);
      f->job.image_height = h;
      f->job.image_width = w;
    }
    f->job.data.seed = f->seed;
    f->job.seed = f->seed;
    InspectReport report = run_inspect_job(f->job);
    if (f->json) {
      print_json(report.to_json().dump(2));
    } else {
      std::fputs(report.to_text(f->max_unreadable).c_str(), stdout);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace tabby::cli
