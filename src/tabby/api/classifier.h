// tabby::Classifier: a trained run folder (or a pretrained ImageNet model)
// ready to classify images inside a program of your own — the same model,
// preprocessing and probabilities as `tabby predict`.
//
//   auto classifier = tabby::Classifier::load("runs/cats");
//   tabby::Classification c = classifier.classify_file("photo.jpg", /*top_k=*/3);
//   std::cout << c.label << " " << c.probability << "\n";
//
// Images are decoded (JPEG, PNG, BMP, GIF), resized to the model's input size
// the way training resized them (and centre-cropped first when the run used
// --crop-to-aspect), and run in inference mode. The header needs no LibTorch.
//
// Thread safety: a Classifier may be shared by any number of threads; their
// calls run one at a time on an internal lock (LibTorch parallelises each
// forward pass over `threads` cores). Copies share the same model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tabby {

struct ClassScore {
  std::string label;
  int index = 0;
  double probability = 0;
};

struct Classification {
  std::string label;  // the most probable class ("unknown" below a threshold)
  double probability = 0;
  std::vector<ClassScore> top_k;  // best first
};

// Below `threshold` the label becomes "unknown" (the scores stay as they are).
void apply_threshold(Classification& classification, double threshold);

struct ClassifierOptions {
  std::string device = "auto";  // auto, cpu, cuda, cuda:N
  int threads = 0;              // LibTorch's CPU threads (0: all cores)
  // Compute type of the forward pass: fp32 (exact), bf16 (faster on GPUs and on
  // CPUs with AVX512-BF16 or AMX, slower on other CPUs; probabilities differ from
  // fp32's in the second or third decimal), or auto (bf16 on CUDA, fp32 on the CPU).
  std::string precision = "fp32";
  // Test-time augmentation: none, or flip (the mirror's logits averaged in; twice the compute).
  std::string tta = "none";
};

class Classifier {
 public:
  // The kept weights of a run folder (`tabby train --out`). tabby::Error when
  // the folder is not a finished run or its files are damaged.
  static Classifier load(const std::filesystem::path& run_dir, const ClassifierOptions& options = {});
  // A pretrained backbone with its ImageNet classifier (`weights`: imagenet or
  // a file), images centre-cropped to image_size like torchvision's evaluation;
  // class names from `classes_file` (default: imagenet_classes.txt where the
  // weights are found).
  static Classifier pretrained(const std::string& model, const std::string& weights,
                               const std::filesystem::path& classes_file, int image_size,
                               const ClassifierOptions& options = {});

  const std::string& name() const;  // the model's name
  const std::vector<std::string>& class_names() const;
  int input_height() const;
  int input_width() const;
  bool crop_to_aspect() const;

  // One image. DecodeError (a tabby::Error) when it cannot be read.
  Classification classify_file(const std::filesystem::path& file, int top_k = 1) const;
  Classification classify_encoded(const void* data, size_t size, int top_k = 1) const;
  // 8-bit RGB pixels, row by row, of any size: resized to the input size first.
  Classification classify_rgb(const uint8_t* rgb, int width, int height, int top_k = 1) const;

  // Probabilities of a batch, N rows of class_names().size(), row-major:
  // `images` holds N images at the input size as 8-bit RGB (N,H,W,3) ...
  std::vector<float> probabilities_rgb(const uint8_t* images, int64_t n) const;
  // ... or as float pixel values 0-255 in channel-first order (N,3,H,W).
  std::vector<float> probabilities_chw(const float* images, int64_t n) const;

  // The top `k` classes of one row of probabilities.
  Classification top(const float* probabilities, int k) const;

 private:
  struct Impl;
  explicit Classifier(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace tabby
