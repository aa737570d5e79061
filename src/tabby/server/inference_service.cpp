#include "tabby/server/inference_service.h"

#include <chrono>
#include <csignal>
#include <thread>

#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace tabby::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string folder_name(const std::filesystem::path& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

InferenceService::InferenceService(const ServeOptions& o) : options_(o) {
  if (o.runs.empty()) throw UsageError("give at least one run folder to serve", "tabby serve RUN [RUN...]");
  if (!o.names.empty() && o.names.size() != o.runs.size()) {
    throw UsageError("give one --name per run folder, or none");
  }
  for (size_t k = 0; k < o.runs.size(); ++k) {
    const std::string name = o.names.empty() ? folder_name(o.runs[k]) : o.names[k];
    if (by_name_.count(name)) throw UsageError("two models are named '" + name + "'", "name them with --name");
    models_.push_back(std::make_unique<ServedModel>(name, o.runs[k], o.model, metrics_));
    by_name_[name] = models_.back().get();
  }
}

std::vector<std::string> InferenceService::model_names() const {
  std::vector<std::string> names;
  for (const auto& m : models_) names.push_back(m->name());
  return names;
}

bool InferenceService::load_models() {
  try {
    for (auto& m : models_) m->load();
    log::info("ready: every model is loaded and warmed");
    return true;
  } catch (const std::exception& e) {
    const auto* tabby_error = dynamic_cast<const Error*>(&e);
    log::error(std::string("a model could not be loaded: ") + e.what(), tabby_error ? tabby_error->hint() : "");
    return false;
  }
}

bool InferenceService::ready() const {
  if (draining_) return false;
  for (const auto& m : models_) {
    if (!m->ready()) return false;
  }
  return true;
}

bool InferenceService::model_ready(const std::string& name) { return !draining_ && model_or_404(name).ready(); }

ServedModel& InferenceService::model_or_404(const std::string& name) {
  const auto it = by_name_.find(name);
  if (it != by_name_.end()) return *it->second;
  std::string known;
  for (const auto& [n, m] : by_name_) known += (known.empty() ? "" : ", ") + n;
  throw serve::RequestError(404, "no model named '" + name + "' (this server has: " + known + ")");
}

ServedModel& InferenceService::ready_model(const std::string& name) {
  ServedModel& m = model_or_404(name);
  if (draining_) throw serve::RequestError(503, "the server is shutting down");
  if (!m.ready()) throw serve::RequestError(503, "model '" + name + "' is still loading");
  return m;
}

std::vector<float> InferenceService::run_images(ServedModel& m, std::vector<float> pixels, int64_t n) {
  auto future = m.infer(std::move(pixels), n);
  if (!future) throw serve::RequestError(503, "the queue of model '" + m.name() + "' is full; retry shortly");
  return future->get();
}

std::vector<float> InferenceService::infer(ServedModel& m, serve::InferRequest& r) {
  for (const auto& encoded : r.encoded) {
    const auto pixels = m.pixels_of(encoded);
    r.pixels.insert(r.pixels.end(), pixels.begin(), pixels.end());
  }
  return run_images(m, std::move(r.pixels), r.images);
}

json InferenceService::predictions_body(ServedModel& m, const std::vector<float>& probs, int top_k,
                                        std::optional<double> threshold) const {
  const double t = threshold.value_or(options_.threshold);
  if (top_k < 1 || !(t >= 0 && t <= 1)) {
    throw serve::RequestError(400, "top_k must be at least 1 and threshold between 0 and 1");
  }
  Classification c = m.top(probs.data(), top_k);
  apply_threshold(c, t);
  json top = json::array();
  for (const auto& s : c.top_k) top.push_back({{"label", s.label}, {"index", s.index}, {"probability", s.probability}});
  return {{"label", c.label}, {"probability", c.probability}, {"top_k", top}};
}

void InferenceService::drain(int signal) {
  // Not ready before the log says so: whoever reads the log may rely on it.
  draining_ = true;
  log::infof("{}: not ready any more; waiting for {} requests in flight (at most {}s)",
             signal == SIGINT ? "SIGINT" : "SIGTERM", in_flight_.load(), options_.drain_timeout_seconds);
  // Closed models run what is queued at once instead of waiting for batches to fill.
  for (auto& m : models_) m->close();
  const auto deadline = Clock::now() + std::chrono::duration<double>(options_.drain_timeout_seconds);
  while (in_flight_.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (in_flight_.load() > 0) {
    log::warnf("{} requests still in flight after the drain timeout: answering those still queued with 503",
               in_flight_.load());
    for (auto& m : models_) m->abandon();
    // Their handlers answer now; one inside a forward pass finishes it.
    const auto grace = Clock::now() + std::chrono::seconds(5);
    while (in_flight_.load() > 0 && Clock::now() < grace) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace tabby::server
