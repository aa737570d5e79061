#include "tabby/serve/batcher.h"

#include <algorithm>

#include "tabby/serve/oip.h"
#include "tabby/util/error.h"

namespace tabby::serve {

DynamicBatcher::DynamicBatcher(Forward forward, size_t input_floats, size_t output_floats, BatcherOptions options,
                               BatchObserver observer)
    : DynamicBatcher(std::vector<Forward>{std::move(forward)}, input_floats, output_floats, options,
                     std::move(observer)) {}

DynamicBatcher::DynamicBatcher(std::vector<Forward> instances, size_t input_floats, size_t output_floats,
                               BatcherOptions options, BatchObserver observer)
    : instances_(std::move(instances)),
      input_floats_(input_floats),
      output_floats_(output_floats),
      options_(options),
      observer_(std::move(observer)) {
  options_.max_batch_size = std::max<int64_t>(1, options_.max_batch_size);
  options_.max_queue = std::max<size_t>(1, options_.max_queue);
  if (instances_.empty()) throw Error("a batcher needs at least one instance of its model");
  for (const Forward& forward : instances_) workers_.emplace_back([this, &forward] { run(forward); });
}

DynamicBatcher::~DynamicBatcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = stopping_ = true;
  }
  arrived_.notify_all();
  for (auto& worker : workers_) worker.join();
  for (auto& r : queue_) {
    r.result.set_exception(std::make_exception_ptr(Error("the server is shutting down")));
  }
}

std::optional<std::future<std::vector<float>>> DynamicBatcher::submit(std::vector<float> inputs, int64_t n) {
  if (n < 1 || inputs.size() != static_cast<size_t>(n) * input_floats_) {
    throw Error("a batch request of " + std::to_string(n) + " images holds " + std::to_string(inputs.size()) +
                " numbers, not " + std::to_string(static_cast<size_t>(std::max<int64_t>(n, 0)) * input_floats_));
  }
  Request r{std::move(inputs), n, {}};
  auto future = r.result.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || queue_.size() >= options_.max_queue) return std::nullopt;
    queue_.push_back(std::move(r));
    arrival_.push_back(std::chrono::steady_clock::now());
  }
  arrived_.notify_all();
  return future;
}

size_t DynamicBatcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void DynamicBatcher::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  arrived_.notify_all();
}

void DynamicBatcher::abandon() {
  std::deque<Request> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = stopping_ = true;
    dropped.swap(queue_);
    arrival_.clear();
  }
  arrived_.notify_all();
  for (auto& r : dropped) {
    r.result.set_exception(std::make_exception_ptr(RequestError(503, "the server stopped before this request ran")));
  }
}

// The requests of the next forward pass: from the first waiting one, until the
// batch is full or the first has waited max_delay. Empty when stopping. With
// several instances the queue's head may change while this one waits (another
// instance took it), so the deadline is always the current head's.
std::vector<DynamicBatcher::Request> DynamicBatcher::collect() {
  std::unique_lock<std::mutex> lock(mutex_);
  auto waiting_images = [&] {
    int64_t n = 0;
    for (const auto& r : queue_) n += r.n;
    return n;
  };
  for (;;) {
    if (stopping_) return {};
    if (queue_.empty()) {
      arrived_.wait(lock);
      continue;
    }
    const auto deadline = arrival_.front() + options_.max_delay;
    if (closed_ || waiting_images() >= options_.max_batch_size || std::chrono::steady_clock::now() >= deadline) break;
    arrived_.wait_until(lock, deadline);
  }
  std::vector<Request> batch;
  int64_t images = 0;
  // Whole requests only; one larger than a batch runs alone.
  while (!queue_.empty() && (batch.empty() || images + queue_.front().n <= options_.max_batch_size)) {
    images += queue_.front().n;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    arrival_.pop_front();
  }
  return batch;
}

void DynamicBatcher::execute(const Forward& forward, std::vector<Request>& batch) {
  int64_t images = 0;
  for (const auto& r : batch) images += r.n;
  std::vector<float> inputs;
  inputs.reserve(static_cast<size_t>(images) * input_floats_);
  for (const auto& r : batch) inputs.insert(inputs.end(), r.inputs.begin(), r.inputs.end());
  try {
    const std::vector<float> outputs = forward(inputs, images);
    if (outputs.size() != static_cast<size_t>(images) * output_floats_) throw Error("the model gave a wrong number of outputs");
    if (observer_) observer_(images);
    size_t at = 0;
    for (auto& r : batch) {
      const size_t count = static_cast<size_t>(r.n) * output_floats_;
      r.result.set_value(std::vector<float>(outputs.begin() + at, outputs.begin() + at + count));
      at += count;
    }
  } catch (...) {
    for (auto& r : batch) r.result.set_exception(std::current_exception());
  }
}

void DynamicBatcher::run(const Forward& forward) {
  for (;;) {
    std::vector<Request> batch = collect();
    if (batch.empty()) return;
    execute(forward, batch);
  }
}

}  // namespace tabby::serve
