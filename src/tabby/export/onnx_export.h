// `tabby export RUN --format onnx`: the whole model as `tabby predict` runs it,
// as one ONNX file written with ONNX's own protobuf classes (Debian's
// libonnx-dev). What the file holds:
//   input   "images"         float [batch, 3, H, W]: RGB pixel values 0-255 at the
//                            run's image size (resizing, and the centre crop of a
//                            --crop-to-aspect run, are the caller's)
//   output  "probabilities"  float [batch, classes], as predict computes them
//   the preprocessing (rescaling / normalisation) as graph ops, every layer in
//   inference mode (dropout and augmentation are identities, batch norm uses its
//   statistics, a zoo backbone's conv + batch norm pairs are folded as tabby
//   folds them), and metadata_props: classes (a JSON list), image_size ("HxW"),
//   crop_to_aspect, model, tabby_version.
// Opsets 10 to 17; the default, 10, is one Debian 12's OpenCV 4.6 reads: ReLU6
// as Clip with attributes, HardSwish as HardSigmoid times x (HardSwish itself
// from opset 14).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace tabby {

struct ExportJob {
  std::filesystem::path run;
  std::string format = "onnx";
  int opset = 10;
  std::filesystem::path out;  // default: RUN/model.onnx
};

struct ExportOutcome {
  std::filesystem::path file;
  int opset = 0;
  int64_t bytes = 0;
  int64_t nodes = 0;
  int64_t parameters = 0;  // numbers in the initializers
};

constexpr int kMinOnnxOpset = 10;
constexpr int kMaxOnnxOpset = 17;

// tabby::Error for a run that is not finished or is damaged, UsageError for
// a format or opset tabby does not write.
ExportOutcome run_export_job(const ExportJob& job);

}  // namespace tabby
