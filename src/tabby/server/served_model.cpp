#include "tabby/server/served_model.h"

#include <fmt/format.h>

#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/run/run_files.h"
#include "tabby/run/run_record.h"
#include "tabby/inference/device.h"
#include "tabby/inference/saved_run.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/threads.h"

namespace tabby::server {

ServedModel::ServedModel(std::string name, std::filesystem::path run_dir, ModelOptions options, serve::Metrics& metrics)
    : name_(std::move(name)), run_dir_(std::move(run_dir)), options_(options), metrics_(metrics) {
  const RunRecord record = read_run_record(run_dir_);
  require_weights_file(run_dir_, record);
  signature_.name = name_;
  signature_.height = static_cast<int>(record.settings.height);
  signature_.width = static_cast<int>(record.settings.width);
  signature_.classes = record.settings.class_names;
  crop_ = record.settings.crop_to_aspect;
}

ServedModel::~ServedModel() = default;

void ServedModel::load() {
  const bool on_gpu = resolve_device(options_.classifier.device).is_cuda();
  plan_ = serve::plan_instances(options_.instances, options_.classifier.threads, on_gpu, default_thread_count());
  ClassifierOptions classifier = options_.classifier;
  classifier.threads = plan_.threads;
  const size_t input = 3 * static_cast<size_t>(signature_.height) * signature_.width;
  const size_t classes = signature_.classes.size();
  std::vector<serve::DynamicBatcher::Forward> forwards;
  // Each instance a load of its own: a Classifier runs one forward pass at a time.
  for (int k = 0; k < plan_.instances; ++k) {
    instances_.push_back(Classifier::load(run_dir_, classifier));
    Classifier c = instances_.back();
    forwards.push_back([c](const std::vector<float>& pixels, int64_t n) { return c.probabilities_chw(pixels.data(), n); });
  }
  // Warm-up: the first passes allocate and pick kernels; requests should not pay for that.
  for (int64_t n : {int64_t{1}, options_.batching.max_batch_size}) {
    std::vector<float> zeros(input * static_cast<size_t>(n), 0.0f);
    for (const auto& forward : forwards) forward(zeros, n);
  }
  batcher_ = std::make_unique<serve::DynamicBatcher>(std::move(forwards), input, classes, options_.batching,
                                                     [this](int64_t images) { metrics_.batch(name_, images); });
  serve::DynamicBatcher* b = batcher_.get();
  metrics_.queue_depth_source(name_, [b] { return b->queue_depth(); });
  ready_ = true;
  log::infof("model {} ready ({} classes, {}x{} input, {} instance{} x {} thread{}, from {})", name_, classes,
             signature_.width, signature_.height, plan_.instances, plan_.instances == 1 ? "" : "s", plan_.threads,
             plan_.threads == 1 ? "" : "s", run_dir_.string());
}

std::vector<float> ServedModel::pixels_of(const std::string& encoded) const {
  const auto* data = reinterpret_cast<const uint8_t*>(encoded.data());
  if (encoded.empty()) throw serve::RequestError(400, "the upload is empty: send the bytes of a JPEG, PNG, BMP or GIF");
  const int h = signature_.height, w = signature_.width;
  std::vector<uint8_t> hwc(static_cast<size_t>(h) * w * 3);
  try {
    const ImageInfo info = probe_image(data, encoded.size());
    if (static_cast<uint64_t>(info.width) * static_cast<uint64_t>(info.height) > options_.max_image_pixels) {
      throw serve::RequestError(400, fmt::format("the image is {}x{} pixels, more than this server takes ({})",
                                                 info.width, info.height, options_.max_image_pixels));
    }
    decode_image_resized(data, encoded.size(), w, h, crop_, hwc.data());
  } catch (const DecodeError& e) {
    throw serve::RequestError(400, "cannot read the upload as an image: " + e.reason());
  }
  // (H,W,3) bytes -> (3,H,W) floats, as the model takes them.
  std::vector<float> chw(hwc.size());
  const size_t plane = static_cast<size_t>(h) * w;
  for (size_t p = 0; p < plane; ++p) {
    for (size_t c = 0; c < 3; ++c) chw[c * plane + p] = hwc[p * 3 + c];
  }
  return chw;
}

std::optional<std::future<std::vector<float>>> ServedModel::infer(std::vector<float> pixels, int64_t n) {
  if (!batcher_) return std::nullopt;
  return batcher_->submit(std::move(pixels), n);
}

void ServedModel::close() {
  if (batcher_) batcher_->close();
}

void ServedModel::abandon() {
  if (batcher_) batcher_->abandon();
}

}  // namespace tabby::server
