// `tabby predict`: classes and probabilities for image files or folders, from
// a run folder or straight from a pretrained model (ImageNet classes), through
// tabby::Classifier; as text, JSON or a CSV table.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tabby {

struct PredictJob {
  std::filesystem::path run;          // a run folder, or empty with `model`
  std::string model;                  // preset/file for run-less prediction (e.g. mobilenet_v2)
  std::string weights = "imagenet";   // run-less: weights of the backbone
  std::filesystem::path classes_file; // run-less: class names, one per line (default: imagenet_classes.txt)
  int64_t image_size = 224;           // run-less
  std::vector<std::string> inputs;    // files and folders
  int top_k = 1;
  double threshold = 0;               // below it the label is "unknown"
  std::string device = "auto";
  int64_t batch_size = 32;
  int threads = 0;
  std::string precision = "fp32";     // fp32, bf16 or auto (ClassifierOptions)
  std::string tta = "none";           // none or flip (ClassifierOptions)
};

struct Prediction {
  std::filesystem::path file;
  std::vector<std::pair<std::string, double>> top;  // best first (label "unknown" below the threshold)
  std::vector<float> probabilities;                 // one per class
  std::string error;                                // set when the file could not be read
};

struct PredictOutcome {
  std::vector<std::string> class_names;
  std::vector<Prediction> predictions;  // in the order the inputs name the files
  size_t failed() const;
};

PredictOutcome run_predict_job(const PredictJob& job);

nlohmann::json predictions_to_json(const std::vector<Prediction>& predictions);
std::string predictions_to_text(const std::vector<Prediction>& predictions);
// path,label,probability,prob_<class>...: one row per readable file, by path.
std::string predictions_to_csv(const PredictOutcome& outcome);

// Image files named by `inputs` (folders walked recursively, sorted).
std::vector<std::filesystem::path> collect_image_files(const std::vector<std::string>& inputs);

}  // namespace tabby
