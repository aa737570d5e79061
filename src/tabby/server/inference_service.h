// What `tabby serve` answers, whatever carries the request (HTTP/1.1 or
// gRPC): the served models, liveness and readiness, the drain, the metrics
// and the inference calls. The front ends (server/http_front_end.h,
// server/grpc_front_end.h) only translate their protocol to these calls, so
// both share one batcher per model, one set of limits, one metrics registry
// and one drain.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tabby/serve/metrics.h"
#include "tabby/serve/oip.h"
#include "tabby/server/serve_options.h"
#include "tabby/server/served_model.h"

namespace tabby::server {

class InferenceService {
 public:
  // Checks the options and the run folders (tabby::Error, before anything
  // listens); the models load in load_models().
  explicit InferenceService(const ServeOptions& options);

  const ServeOptions& options() const { return options_; }
  serve::Metrics& metrics() { return metrics_; }
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  std::vector<std::string> model_names() const;
  bool has_model(const std::string& name) const { return by_name_.count(name) > 0; }
  size_t body_limit() const { return static_cast<size_t>(options_.max_body_mb * 1024 * 1024); }
  // Counts one answered request in the metrics. A name no model has is
  // recorded as "" so that clients cannot grow the label set without bound.
  void record_request(const std::string& route, const std::string& model, int status, double seconds) {
    metrics_.request(route, has_model(model) ? model : "", status, seconds);
  }

  // Loads and warms every model; false (the reason logged) when one fails.
  bool load_models();
  // Every model loaded and warmed, and not draining.
  bool ready() const;
  bool draining() const { return draining_.load(); }
  bool model_ready(const std::string& name);  // RequestError(404) for an unknown name

  // RequestError(404) for an unknown name.
  ServedModel& model_or_404(const std::string& name);
  // RequestError(404), or 503 while loading or draining.
  ServedModel& ready_model(const std::string& name);
  // Runs `n` images (RGB 0-255, 3xHxW each) through the model's batcher;
  // RequestError(503) when its queue is full.
  std::vector<float> run_images(ServedModel& model, std::vector<float> pixels, int64_t n);
  // Decodes a request's BYTES images (if any) and runs the request; the
  // probabilities, request.images rows of the model's classes.
  std::vector<float> infer(ServedModel& model, serve::InferRequest& request);
  // The body of POST /predictions/{m}: label, probability and the top `top_k`,
  // under `threshold` (nullopt: the server's default) the label is "unknown".
  nlohmann::json predictions_body(ServedModel& model, const std::vector<float>& probabilities, int top_k,
                                  std::optional<double> threshold) const;

  // Readiness turns false at once, the models run what is queued, and this
  // returns when no request is in flight (or the drain timeout passed: those
  // still queued are answered 503).
  void drain(int signal);

  // Counts an inference request in flight while it lives (the drain waits for them).
  class InFlight {
   public:
    explicit InFlight(InferenceService& s) : n_(s.in_flight_) { ++n_; }
    ~InFlight() { --n_; }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    std::atomic<int>& n_;
  };

 private:
  ServeOptions options_;
  serve::Metrics metrics_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::map<std::string, ServedModel*> by_name_;
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
};

// "runs/cats/" and "runs/cats" are both "cats"; "." is the current folder's name.
std::string folder_name(const std::filesystem::path& dir);

}  // namespace tabby::server
