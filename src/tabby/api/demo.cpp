#include "tabby/api/demo.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "tabby/api/evaluate_job.h"
#include "tabby/api/predict_job.h"
#include "tabby/api/remote_dataset.h"
#include "tabby/api/train_job.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"
#include "tabby/weights/pretrained.h"

namespace tabby {

namespace fs = std::filesystem;

namespace {

bool pretrained_available(const std::string& arch) {
  try {
    resolve_pretrained_weights(arch);
    return true;
  } catch (const Error& e) {
    log::warn(std::string("no ImageNet weights for ") + arch + ": " + e.what());
    return false;
  }
}

std::vector<std::string> sample_images(const fs::path& root) {
  std::vector<std::string> picks;
  for (const char* cls : {"cats", "dogs"}) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root / "validation" / cls, ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (size_t i = 0; i < files.size() && i < 2; ++i) picks.push_back(files[i * (files.size() / 2)].string());
  }
  return picks;
}

}  // namespace

namespace {

// Frozen ImageNet MobileNetV2 + a new head when its weights are found (the
// backbone's features are computed once: no augmentation, so head epochs take
// seconds; then the last blocks are fine-tuned briefly at a low learning rate);
// else the tutorial's augmented CNN from scratch.
TrainJob demo_train_job(const DemoOptions& o, const fs::path& data, bool transfer) {
  TrainJob job;
  job.data.data = (data / "train").string();
  job.data.val = (data / "validation").string();
  job.device = o.device;
  job.threads = o.threads;
  job.out = o.out;
  job.overwrite = true;
  if (transfer) {
    job.model = "mobilenet_v2";
    job.freeze_backbone = true;
    const int64_t size = o.quick ? 96 : 160;
    job.image_height = job.image_width = size;
    job.train_overrides = {{"epochs", o.quick ? 2 : 5},     {"lr", 1e-3},
                           {"batch_size", 32},              {"fine_tune_last", 2},
                           {"fine_tune_epochs", 1},         {"fine_tune_lr", 1e-4},
                           {"keep", "best"}};
    log::infof("model: MobileNetV2 with ImageNet weights, frozen, + GlobalAveragePooling/Dropout/Dense head at "
               "{}x{}; {} head epochs, then 1 epoch fine-tuning its last 2 blocks",
               size, size, o.quick ? 2 : 5);
  } else {
    job.model = "tutorial-cnn-augmented";
    job.image_height = job.image_width = o.quick ? 64 : 96;
    job.train_overrides = {{"epochs", o.quick ? 1 : 4}, {"keep", "best"}};
    log::info("model: the tutorial's augmented CNN trained from scratch (small images, few epochs: expect ~65-70%)");
  }
  return job;
}

EvaluateOutcome evaluate_demo(const DemoOptions& o, const fs::path& data) {
  EvaluateJob eval;
  eval.run = o.out;
  eval.data = (data / "validation").string();
  eval.device = o.device;
  eval.threads = o.threads;
  eval.top_losses = 3;
  return run_evaluate_job(eval);
}

PredictOutcome predict_demo(const DemoOptions& o, const fs::path& data) {
  PredictJob predict;
  predict.run = o.out;
  predict.inputs = sample_images(data);
  predict.top_k = 1;
  predict.device = o.device;
  return run_predict_job(predict);
}

}  // namespace

int run_demo(const DemoOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  log::info("tabby demo: cats vs dogs, the Keras transfer-learning tutorial, natively");
  const fs::path data = o.data.empty() ? find_or_fetch_dataset(cats_and_dogs_filtered()) : fs::path(o.data);
  log::infof("data: {} (train/ and validation/, one sub-folder per class)", data.string());
  const bool transfer = pretrained_available("mobilenet_v2");
  const TrainJob job = demo_train_job(o, data, transfer);
  run_train_job(job);
  const EvaluateOutcome evaluated = evaluate_demo(o, data);
  const auto predictions = predict_demo(o, data);

  std::string out;
  out += fmt::format("\n== evaluation on {} validation images\n", evaluated.result.count);
  out += evaluated.to_text();
  out += "\n== predictions for a few validation images\n" + predictions_to_text(predictions.predictions);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  out += fmt::format(
      "\nThe demo trained {} and reached {:.1f}% validation accuracy (majority baseline {:.1f}%) in {}.\n"
      "Run folder: {} (model.toml, weights.safetensors, history.csv, run.json)\n"
      "Next: tabby evaluate {} --data DIR · tabby predict {} IMAGE... · tabby summary --model {}\n",
      transfer ? "MobileNetV2 (transfer learning)" : "a small CNN", 100.0 * evaluated.result.accuracy,
      100.0 * evaluated.baseline.accuracy, format_duration(seconds), o.out.string(), o.out.string(), o.out.string(), job.model);
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace tabby
