#include "tabby/serve/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <tuple>

namespace tabby::serve {

namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};

// Prometheus label values escape backslash, quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  buckets_[i]++;
  sum_ += v;
  count_++;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_;
}

uint64_t Histogram::count_at_most(double bound) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t n = 0;
  for (size_t i = 0; i < bounds_.size() && bounds_[i] <= bound; ++i) n += buckets_[i];
  return n;
}

std::string Histogram::exposition(const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::string sep = labels.empty() ? "" : labels + ",";
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i];
    const double le = i < bounds_.size() ? bounds_[i] : INFINITY;
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, sep, number(le), cumulative);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, number(sum_), name, braces, count_);
  return out;
}

Metrics::Metrics() = default;

void Metrics::request(const std::string& route, const std::string& model, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  requests_[{route, model, status}]++;
  auto& h = latency_[route];
  if (!h) h = std::make_unique<Histogram>(kLatencyBounds);
  h->observe(seconds);
}

void Metrics::batch(const std::string& model, int64_t images) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& h = batch_[model];
  if (!h) h = std::make_unique<Histogram>(kBatchBounds);
  h->observe(static_cast<double>(images));
}

void Metrics::queue_depth_source(const std::string& model, std::function<size_t()> depth) {
  std::lock_guard<std::mutex> lock(mutex_);
  depth_[model] = std::move(depth);
}

uint64_t Metrics::batches_larger_than_one(const std::string& model) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = batch_.find(model);
  return it == batch_.end() ? 0 : it->second->count() - it->second->count_at_most(1);
}

std::string Metrics::exposition() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "# HELP tabby_requests_total HTTP requests answered, by route, model and status.\n"
                    "# TYPE tabby_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, model, status] = key;
    out += fmt::format("tabby_requests_total{{route=\"{}\",model=\"{}\",status=\"{}\"}} {}\n", label(route),
                       label(model), status, n);
  }
  out += "# HELP tabby_request_seconds Time from a request's arrival to its answer.\n"
         "# TYPE tabby_request_seconds histogram\n";
  for (const auto& [route, h] : latency_) out += h->exposition("tabby_request_seconds", "route=\"" + label(route) + "\"");
  out += "# HELP tabby_batch_images Images per forward pass.\n# TYPE tabby_batch_images histogram\n";
  for (const auto& [model, h] : batch_) out += h->exposition("tabby_batch_images", "model=\"" + label(model) + "\"");
  out += "# HELP tabby_queue_depth Requests waiting for a forward pass.\n# TYPE tabby_queue_depth gauge\n";
  for (const auto& [model, depth] : depth_) {
    out += fmt::format("tabby_queue_depth{{model=\"{}\"}} {}\n", label(model), depth());
  }
  return out;
}

}  // namespace tabby::serve
