// `tabby evaluate RUN --data DIR`: the run's model on labelled data: loss,
// accuracy beside the majority-class baseline, the classification report,
// the confusion matrix and the most confidently wrong images.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/metrics/classification.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/inference/evaluate.h"

namespace tabby {

struct EvaluateJob {
  std::filesystem::path run;
  std::string data;
  std::string split;
  std::string device = "auto";
  int64_t batch_size = 0;      // 0: the run's batch size
  int threads = 0;
  int top_losses = 5;          // most confidently wrong images to list
  std::string weights = "weights.safetensors";
  std::string tta = "none";    // inference/tta.h
};

struct Mistake {
  std::filesystem::path file;
  std::string true_label, predicted_label;
  double probability = 0;  // of the predicted label
  double loss = 0;
};

struct EvaluateOutcome {
  std::vector<std::string> class_names;
  EvalResult result;
  metrics::MajorityBaseline baseline;
  metrics::ConfusionMatrix confusion;
  metrics::ClassificationReport report;
  std::vector<Mistake> top_losses;
  std::vector<SkippedFile> skipped;
  std::vector<std::filesystem::path> paths;  // rows of `result`
  std::string data_source;
  // Set when every image got the same class while the labels hold several (a collapsed model).
  std::optional<std::string> one_class;

  nlohmann::json to_json() const;
  std::string to_text() const;
};

EvaluateOutcome run_evaluate_job(const EvaluateJob& job);

// Builds the metrics part of an outcome from raw evaluation outputs (shared
// with training's final evaluation and reports).
EvaluateOutcome summarize_evaluation(const EvalResult& result, const std::vector<std::string>& class_names,
                                     const std::vector<std::filesystem::path>& paths, int top_losses);

}  // namespace tabby
