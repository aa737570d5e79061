// Dynamic batching for a model server: requests from many HTTP threads are
// queued and an inference thread runs them through the model together. The
// thread takes the first waiting request, keeps collecting until
// `max_batch_size` images are waiting or `max_delay` has passed since that
// first request, then runs one forward pass and hands each request its rows.
// So a lone request waits at most the delay plus one forward pass, and under
// load the batches fill up. The queue is bounded: when `max_queue` requests
// wait, submit() refuses (the server answers 503).
//
// Several instances of a model (one inference thread each, Triton's "instance
// count") share one queue: an idle instance takes the next batch while the
// others run theirs. On a CPU, two single-threaded instances keep both cores
// busy where one two-threaded forward pass waits at every layer for its
// slower half.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace tabby::serve {

struct BatcherOptions {
  int64_t max_batch_size = 32;  // images per forward pass
  std::chrono::microseconds max_delay{5000};
  size_t max_queue = 256;  // requests waiting (collected or not) before submit() refuses
};

class DynamicBatcher {
 public:
  // (n images' inputs, one after another; n) -> n rows of outputs, one after
  // another. Runs on the batcher's thread only.
  using Forward = std::function<std::vector<float>(const std::vector<float>& inputs, int64_t n)>;
  // Called after each forward pass with the number of images it ran.
  using BatchObserver = std::function<void(int64_t images)>;

  DynamicBatcher(Forward forward, size_t input_floats, size_t output_floats, BatcherOptions options,
                 BatchObserver observer = {});
  // One inference thread per forward function (each its own instance of the
  // model; each is only ever called from its own thread).
  DynamicBatcher(std::vector<Forward> instances, size_t input_floats, size_t output_floats, BatcherOptions options,
                 BatchObserver observer = {});
  // Stops the threads; requests still waiting fail with tabby::Error.
  ~DynamicBatcher();
  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  // Queues `n` images (inputs.size() == n * input_floats); the future gives
  // their n rows of outputs, or the forward pass's exception. nullopt when the
  // queue is full or the batcher has stopped.
  std::optional<std::future<std::vector<float>>> submit(std::vector<float> inputs, int64_t n);

  size_t queue_depth() const;
  // Refuses new requests; those already queued run at once (no batch can fill
  // any more, so none waits out the delay). Idempotent.
  void close();
  // Closes, and fails every request still waiting with a 503 (the drain's time
  // is up); a forward pass already running finishes. Idempotent.
  void abandon();

 private:
  struct Request {
    std::vector<float> inputs;
    int64_t n;
    std::promise<std::vector<float>> result;
  };

  void run(const Forward& forward);
  std::vector<Request> collect();
  void execute(const Forward& forward, std::vector<Request>& batch);

  std::vector<Forward> instances_;
  size_t input_floats_, output_floats_;
  BatcherOptions options_;
  BatchObserver observer_;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<Request> queue_;
  std::deque<std::chrono::steady_clock::time_point> arrival_;
  bool closed_ = false, stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace tabby::serve
