// The server's metrics in Prometheus' text format (GET /metrics): requests by
// route and status, request latency and batch size as histograms, and the
// queue depth of each model, read when scraped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tabby::serve {

// Cumulative buckets with upper bounds `bounds` (and +Inf), a sum and a count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // `name`{labels,le="..."} lines, _sum and _count, for the exposition.
  std::string exposition(const std::string& name, const std::string& labels) const;
  uint64_t count() const;
  // Observations <= bound (the cumulative bucket), bound from bounds().
  uint64_t count_at_most(double bound) const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> buckets_;  // per bound, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  // One answered request: its route pattern ("/v2/models/{m}/infer"), model
  // ("" for none), status and seconds from arrival to answer.
  void request(const std::string& route, const std::string& model, int status, double seconds);
  void batch(const std::string& model, int64_t images);
  // A gauge read at scrape time.
  void queue_depth_source(const std::string& model, std::function<size_t()> depth);

  std::string exposition() const;
  // Forward passes of `model` that ran more than one image (tests, logs).
  uint64_t batches_larger_than_one(const std::string& model) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::string, std::unique_ptr<Histogram>> latency_;  // by route
  std::map<std::string, std::unique_ptr<Histogram>> batch_;    // by model
  std::map<std::string, std::function<size_t()>> depth_;
};

}  // namespace tabby::serve
