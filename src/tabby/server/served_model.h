// One model of `tabby serve`: a run folder's Classifier, in one or more
// instances, behind its own DynamicBatcher (one inference thread per
// instance), loaded and warmed in the background so that readiness says the
// truth.
#pragma once

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tabby/api/classifier.h"
#include "tabby/serve/batcher.h"
#include "tabby/serve/instances.h"
#include "tabby/serve/metrics.h"
#include "tabby/serve/oip.h"

namespace tabby::server {

struct ModelOptions {
  serve::BatcherOptions batching;
  ClassifierOptions classifier;          // device, CPU threads of each instance (0: cores / instances), precision
  int instances = 0;                     // copies of the model taking batches side by side (0: see plan_instances)
  uint64_t max_image_pixels = 40000000;  // larger uploads are refused before decoding
};


class ServedModel {
 public:
  // Checks the run folder now (a clear error for a folder that is not a
  // finished run); load() does the slow part.
  ServedModel(std::string name, std::filesystem::path run_dir, ModelOptions options, serve::Metrics& metrics);
  ~ServedModel();

  // Loads the weights and runs one batch through the model; ready() after.
  void load();
  bool ready() const { return ready_.load(); }
  // Known once load() returned.
  const serve::InstancePlan& plan() const { return plan_; }
  const std::string& name() const { return name_; }
  // Known before load(): from the run's record.
  const serve::ModelSignature& signature() const { return signature_; }

  // RGB pixel values 0-255, (3,H,W) per image, for one image decoded from an upload.
  // serve::RequestError(400) when it is not an image or too large.
  std::vector<float> pixels_of(const std::string& encoded) const;
  // Queues `n` images; nullopt when the queue is full (or the model is closed).
  std::optional<std::future<std::vector<float>>> infer(std::vector<float> pixels, int64_t n);
  // The top classes of one row of probabilities.
  Classification top(const float* probabilities, int k) const { return instances_.front().top(probabilities, k); }
  // Refuses new requests; queued ones still run.
  void close();
  // The drain's time is up: requests still waiting fail with a 503.
  void abandon();

 private:
  std::string name_;
  std::filesystem::path run_dir_;
  ModelOptions options_;
  serve::Metrics& metrics_;
  serve::ModelSignature signature_;
  bool crop_ = false;
  serve::InstancePlan plan_;
  std::vector<Classifier> instances_;
  std::unique_ptr<serve::DynamicBatcher> batcher_;
  std::atomic<bool> ready_{false};
};

}  // namespace tabby::server
