// tabby predict RUN FILE|DIR...: class and probability per image.
#include <memory>

#include "tabby/api/predict_job.h"
#include "tabby/cli/commands.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"

namespace tabby::cli {

Command add_predict(CLI::App& root) {
  auto job = std::make_shared<PredictJob>();
  auto json = std::make_shared<bool>(false);
  auto args = std::make_shared<std::vector<std::string>>();
  auto classes = std::make_shared<std::string>();
  auto csv = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand(
      "predict", "Predict classes for images: tabby predict RUN FILE|DIR...  (or --model NAME FILE... for ImageNet)");
  app->add_option("paths", *args, "A run folder followed by image files or folders (without a run: use --model)")
      ->required();
  app->add_option("--top-k", job->top_k, "Show the K most likely classes (default 1)");
  app->add_option("--threshold", job->threshold,
                  "Call an image 'unknown' when its most likely class has a lower probability (0-1; default 0)");
  app->add_option("--csv", *csv,
                  "Also write FILE: path,label,probability,prob_<class>... for every readable image, by path");
  app->add_option("--model", job->model, "Predict with a pretrained backbone's ImageNet classifier instead of a run");
  app->add_option("--weights", job->weights, "With --model: imagenet (default) or a weights file");
  app->add_option("--classes", *classes, "With --model: class names file (default: imagenet_classes.txt)");
  app->add_option("--image-size", job->image_size, "With --model: input size (default 224)");
  app->add_option("--batch-size", job->batch_size, "Images per batch (default 32)");
  app->add_option("--device", job->device, "auto, cpu, cuda or cuda:N");
  app->add_option("--threads", job->threads, "CPU threads (default: all cores)");
  app->add_option("--precision", job->precision,
                  "fp32 (default, exact), bf16 (faster on GPUs and on CPUs with AVX512-BF16 or AMX, slower on other "
                  "CPUs; probabilities differ in the second or third decimal) or auto (bf16 on CUDA)");
  app->add_option("--tta", job->tta, "Test-time augmentation: none (default) or flip (each image's mirror averaged in: usually a few tenths of a point of accuracy for twice the compute)");
  app->add_flag("--json", *json, "Print a JSON list of {file, label, probability}");
  Action run = [job, json, args, classes, csv]() -> int {
    std::vector<std::string> inputs = *args;
    if (job->model.empty()) {
      if (inputs.size() < 2) throw UsageError("give a run folder and at least one image", "tabby predict RUN IMAGE...");
      job->run = inputs.front();
      inputs.erase(inputs.begin());
    }
    job->inputs = inputs;
    job->classes_file = *classes;
    const PredictOutcome outcome = run_predict_job(*job);
    if (!csv->empty()) write_file_atomic(*csv, predictions_to_csv(outcome));
    if (*json) {
      print_json(predictions_to_json(outcome.predictions).dump(2));
    } else {
      std::fputs(predictions_to_text(outcome.predictions).c_str(), stdout);
    }
    if (const size_t failed = outcome.failed(); failed > 0) {
      log::warn(std::to_string(failed) + " of " + std::to_string(outcome.predictions.size()) +
                " files could not be read" + (csv->empty() ? "" : " (they are not in the CSV)"));
      return 1;
    }
    return 0;
  };
  return {app, run};
}

}  // namespace tabby::cli
