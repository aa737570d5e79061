// The parts of `tabby serve` that need no network: the dynamic batcher
// (batches form under concurrency, a lone request runs alone, a full queue
// refuses, failures reach every request), the Prometheus exposition and the
// Open Inference Protocol's requests and answers.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tabby/report/base64.h"
#include "tabby/serve/batcher.h"
#include "tabby/serve/instances.h"
#include "tabby/serve/metrics.h"
#include "tabby/serve/oip.h"
#include "tabby/util/error.h"

namespace tabby::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A model of one input number per image whose output is twice the input; it
// records the size of every batch it ran.
struct Doubler {
  std::mutex mutex;
  std::vector<int64_t> batches;
  DynamicBatcher::Forward forward() {
    return [this](const std::vector<float>& in, int64_t n) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        batches.push_back(n);
      }
      std::vector<float> out;
      for (float v : in) out.push_back(2 * v);
      return out;
    };
  }
};

// A model whose forward passes block until release(): what runs, and what
// waits behind it, stay put while a test looks.
struct HeldModel {
  std::mutex mutex;
  std::condition_variable cv;
  bool released = false;
  std::atomic<int> running{0};
  DynamicBatcher::Forward forward() {
    return [this](const std::vector<float>& in, int64_t) {
      running++;
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [this] { return released; });
      return in;
    };
  }
  void wait_until_running() const {
    while (running.load() == 0) std::this_thread::sleep_for(1ms);
  }
  void release() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      released = true;
    }
    cv.notify_all();
  }
};

TEST(DynamicBatcher, ConcurrentRequestsShareAForwardPassAndGetTheirOwnRows) {
  Doubler model;
  DynamicBatcher b(model.forward(), 1, 1, {32, 10s, 256});  // waits for 8 images (or 10 s, never reached)
  std::vector<std::future<std::vector<float>>> futures;
  for (int i = 0; i < 7; ++i) futures.push_back(*b.submit({static_cast<float>(i)}, 1));
  auto big = b.submit({100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117,
                       118, 119, 120, 121, 122, 123, 124}, 25);  // 7 + 25 = 32: the batch is full
  ASSERT_TRUE(big.has_value());
  for (int i = 0; i < 7; ++i) EXPECT_EQ(futures[i].get(), std::vector<float>{2.0f * i});
  const auto rows = big->get();
  ASSERT_EQ(rows.size(), 25u);
  EXPECT_EQ(rows.front(), 200);
  EXPECT_EQ(rows.back(), 248);
  ASSERT_EQ(model.batches.size(), 1u);
  EXPECT_EQ(model.batches[0], 32);
}

TEST(DynamicBatcher, ALoneRequestRunsAloneOnceTheDelayIsOver) {
  Doubler model;
  DynamicBatcher b(model.forward(), 2, 2, {32, 20ms, 256});
  EXPECT_EQ(b.submit({1, 2}, 1)->get(), (std::vector<float>{2, 4}));
  EXPECT_EQ(model.batches, std::vector<int64_t>{1});
  EXPECT_EQ(b.queue_depth(), 0u);
}

TEST(DynamicBatcher, ARequestLargerThanABatchRunsWhole) {
  Doubler model;
  DynamicBatcher b(model.forward(), 1, 1, {4, 1ms, 256});
  auto f = b.submit(std::vector<float>(10, 1.0f), 10);
  EXPECT_EQ(f->get().size(), 10u);
  EXPECT_EQ(model.batches, std::vector<int64_t>{10});
  EXPECT_THROW(b.submit({1, 2, 3}, 2), Error);  // 3 numbers are not 2 images of one
}

TEST(DynamicBatcher, AFullQueueRefusesAndAClosedOneToo) {
  HeldModel model;
  DynamicBatcher b(model.forward(), 1, 1, {1, 0ms, 2});
  auto first = b.submit({1}, 1);  // taken by the forward pass, which then blocks
  model.wait_until_running();
  auto second = b.submit({2}, 1), third = b.submit({3}, 1);  // wait in the queue
  EXPECT_TRUE(second && third);
  EXPECT_EQ(b.queue_depth(), 2u);
  EXPECT_FALSE(b.submit({4}, 1).has_value());  // full
  model.release();
  EXPECT_EQ(first->get(), std::vector<float>{1});
  EXPECT_EQ(third->get(), std::vector<float>{3});
  b.close();
  EXPECT_FALSE(b.submit({5}, 1).has_value());
}

// Draining: once closed, what is queued runs at once, not after the batch delay.
TEST(DynamicBatcher, AClosedBatcherRunsWhatIsQueuedWithoutWaitingForTheDelay) {
  Doubler model;
  DynamicBatcher b(model.forward(), 1, 1, {32, 60s, 256});
  auto f = b.submit({3}, 1);
  while (b.queue_depth() == 0) std::this_thread::sleep_for(1ms);
  const auto start = std::chrono::steady_clock::now();
  b.close();
  EXPECT_EQ(f->get(), std::vector<float>{6});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
}

// The drain's time is up: waiting requests get a 503; the one in the forward pass finishes.
TEST(DynamicBatcher, AbandoningFailsTheWaitingRequestsWith503) {
  HeldModel model;
  DynamicBatcher b(model.forward(), 1, 1, {1, 0ms, 8});
  auto running_one = b.submit({1}, 1);
  model.wait_until_running();
  auto waiting = b.submit({2}, 1);
  b.abandon();
  try {
    waiting->get();
    ADD_FAILURE() << "a waiting request ran";
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status(), 503);
    EXPECT_NE(std::string(e.what()).find("stopped before this request ran"), std::string::npos);
  }
  EXPECT_FALSE(b.submit({3}, 1).has_value());
  model.release();
  EXPECT_EQ(running_one->get(), std::vector<float>{1});
}

TEST(DynamicBatcher, AFailingForwardPassFailsEveryRequestOfItsBatch) {
  auto forward = [](const std::vector<float>&, int64_t) -> std::vector<float> { throw Error("the model broke"); };
  DynamicBatcher b(forward, 1, 1, {8, 50ms, 256});
  auto a = b.submit({1}, 1), c = b.submit({2}, 1);
  EXPECT_THROW(a->get(), Error);
  EXPECT_THROW(c->get(), Error);
}

// Two instances run side by side: while one forward pass is held, the other
// instance takes the next request; each request still gets its own rows.
TEST(DynamicBatcher, AnIdleInstanceTakesTheNextBatchWhileAnotherRuns) {
  HeldModel a, b;
  DynamicBatcher batcher(std::vector<DynamicBatcher::Forward>{a.forward(), b.forward()}, 1, 1, {1, 0ms, 8});
  auto first = batcher.submit({1}, 1);
  while (a.running.load() + b.running.load() == 0) std::this_thread::sleep_for(1ms);
  auto second = batcher.submit({2}, 1);
  a.wait_until_running();
  b.wait_until_running();  // both held at once: the second request did not wait for the first
  EXPECT_EQ(batcher.queue_depth(), 0u);
  a.release();
  b.release();
  EXPECT_EQ(first->get(), std::vector<float>{1});
  EXPECT_EQ(second->get(), std::vector<float>{2});
}

TEST(DynamicBatcher, NeedsAnInstance) {
  EXPECT_THROW(DynamicBatcher(std::vector<DynamicBatcher::Forward>{}, 1, 1, {}), Error);
}

TEST(InstancePlan, OnePerTwoCoresOnePerCoreBelowFourAtMostFourOneOnAGpu) {
  auto plan = [](int instances, int threads, bool gpu, int cores) {
    const InstancePlan p = plan_instances(instances, threads, gpu, cores);
    return std::make_pair(p.instances, p.threads);
  };
  EXPECT_EQ(plan(0, 0, false, 1), std::make_pair(1, 1));
  EXPECT_EQ(plan(0, 0, false, 2), std::make_pair(2, 1));
  EXPECT_EQ(plan(0, 0, false, 3), std::make_pair(3, 1));
  EXPECT_EQ(plan(0, 0, false, 8), std::make_pair(4, 2));
  EXPECT_EQ(plan(0, 0, false, 64), std::make_pair(4, 16));
  EXPECT_EQ(plan(0, 0, true, 16), std::make_pair(1, 16));
  EXPECT_EQ(plan(2, 0, true, 16), std::make_pair(2, 16));
  // One setting given: the other follows from the cores.
  EXPECT_EQ(plan(1, 0, false, 2), std::make_pair(1, 2));
  EXPECT_EQ(plan(0, 2, false, 8), std::make_pair(4, 2));
  EXPECT_EQ(plan(0, 4, false, 2), std::make_pair(1, 4));
  EXPECT_EQ(plan(3, 5, false, 2), std::make_pair(3, 5));
}

TEST(Metrics, ExpositionHasCountersHistogramsAndGauges) {
  Metrics m;
  m.request("/predictions/{m}", "cats", 200, 0.004);
  m.request("/predictions/{m}", "cats", 200, 0.3);
  m.request("/predictions/{m}", "cats", 503, 0.001);
  m.request("other", "", 404, 0.0001);
  m.batch("cats", 1);
  m.batch("cats", 7);
  m.queue_depth_source("cats", [] { return size_t{3}; });
  const std::string text = m.exposition();
  EXPECT_NE(text.find("# TYPE tabby_requests_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("tabby_requests_total{route=\"/predictions/{m}\",model=\"cats\",status=\"200\"} 2"),
            std::string::npos) << text;
  EXPECT_NE(text.find("tabby_requests_total{route=\"other\",model=\"\",status=\"404\"} 1"), std::string::npos);
  // Cumulative buckets: 2 of the 3 prediction requests took at most 5 ms.
  EXPECT_NE(text.find("tabby_request_seconds_bucket{route=\"/predictions/{m}\",le=\"0.005\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("tabby_request_seconds_bucket{route=\"/predictions/{m}\",le=\"+Inf\"} 3"), std::string::npos);
  EXPECT_NE(text.find("tabby_request_seconds_count{route=\"/predictions/{m}\"} 3"), std::string::npos);
  EXPECT_NE(text.find("tabby_batch_images_bucket{model=\"cats\",le=\"8\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("tabby_queue_depth{model=\"cats\"} 3"), std::string::npos);
  EXPECT_EQ(m.batches_larger_than_one("cats"), 1u);
  Metrics quoted;
  quoted.request("/x", "a\"b", 200, 0);
  EXPECT_NE(quoted.exposition().find("model=\"a\\\"b\""), std::string::npos);
}

ModelSignature cats() {
  ModelSignature m;
  m.name = "cats";
  m.height = 2;
  m.width = 2;
  m.classes = {"cat", "dog"};
  m.max_images = 4;
  return m;
}

std::string infer_request_error(const json& body) {
  try {
    parse_infer_request(body, cats());
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.what();
  }
  return "";
}

TEST(OpenInferenceProtocol, Fp32PixelsFlatOrNested) {
  std::vector<float> flat(2 * 3 * 2 * 2);
  for (size_t i = 0; i < flat.size(); ++i) flat[i] = static_cast<float>(i);
  json body = {{"id", "r1"}, {"inputs", {{{"name", "images"}, {"shape", {2, 3, 2, 2}}, {"datatype", "FP32"}, {"data", flat}}}}};
  InferRequest r = parse_infer_request(body, cats());
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.pixels, flat);
  EXPECT_EQ(r.id, "r1");
  json nested = body;
  nested["inputs"][0]["data"] = json::array();
  for (int n = 0; n < 2; ++n) {
    json image = json::array();
    for (int c = 0; c < 3; ++c) image.push_back({{flat[n * 12 + c * 4 + 0], flat[n * 12 + c * 4 + 1]},
                                                 {flat[n * 12 + c * 4 + 2], flat[n * 12 + c * 4 + 3]}});
    nested["inputs"][0]["data"].push_back(image);
  }
  EXPECT_EQ(parse_infer_request(nested, cats()).pixels, flat);
  const json out = infer_response(r, cats(), {0.9f, 0.1f, 0.2f, 0.8f});
  EXPECT_EQ(out["model_name"], "cats");
  EXPECT_EQ(out["id"], "r1");
  EXPECT_EQ(out["outputs"][0]["name"], "probabilities");
  EXPECT_EQ(out["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(out["outputs"][0]["shape"], json({2, 2}));
  EXPECT_FLOAT_EQ(out["outputs"][0]["data"][3].get<float>(), 0.8f);
}

TEST(OpenInferenceProtocol, BytesAndTheClassificationExtension) {
  json body = {{"inputs", {{{"name", "image_bytes"}, {"shape", {2}}, {"datatype", "BYTES"},
                            {"data", {report::base64_encode("first"), report::base64_encode("second")}}}}},
               {"outputs", {{{"name", "probabilities"}, {"parameters", {{"classification", 5}}}}}}};
  InferRequest r = parse_infer_request(body, cats());
  EXPECT_EQ(r.encoded, (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(r.classification, 2);  // at most the number of classes
  const json out = infer_response(r, cats(), {0.25f, 0.75f, 0.6f, 0.4f});
  EXPECT_EQ(out["outputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(out["outputs"][0]["shape"], json({2, 2}));
  EXPECT_EQ(out["outputs"][0]["data"][0], "0.750000:1:dog");
  EXPECT_EQ(out["outputs"][0]["data"][2], "0.600000:0:cat");
}

TEST(OpenInferenceProtocol, EveryMistakeIsA400NamingIt) {
  auto fp32 = [](json shape, json data) {
    return json{{"inputs", {{{"name", "x"}, {"shape", shape}, {"datatype", "FP32"}, {"data", data}}}}};
  };
  EXPECT_NE(infer_request_error(json::array()).find("JSON object"), std::string::npos);
  EXPECT_NE(infer_request_error({{"inputs", json::array()}}).find("exactly one input"), std::string::npos);
  EXPECT_NE(infer_request_error(fp32({1, 3, 4, 4}, std::vector<float>(48))).find("[N, 3, 2, 2]"), std::string::npos);
  EXPECT_NE(infer_request_error(fp32({1, 3, 2, 2}, std::vector<float>(11))).find("holds 11 values"), std::string::npos);
  EXPECT_NE(infer_request_error(fp32({1, 3, 2, 2}, std::vector<std::string>(12, "x"))).find("numbers"), std::string::npos);
  EXPECT_NE(infer_request_error(fp32({0, 3, 2, 2}, json::array())).find("no image"), std::string::npos);
  EXPECT_NE(infer_request_error(fp32({5, 3, 2, 2}, std::vector<float>(60))).find("at most 4"), std::string::npos);
  EXPECT_NE(infer_request_error(fp32("1x3", json::array())).find("`shape`"), std::string::npos);
  json int8 = fp32({1, 3, 2, 2}, std::vector<float>(12));
  int8["inputs"][0]["datatype"] = "INT8";
  EXPECT_NE(infer_request_error(int8).find("INT8"), std::string::npos);
  json bad64 = {{"inputs", {{{"name", "b"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {"not base64!"}}}}}};
  EXPECT_NE(infer_request_error(bad64).find("not base64"), std::string::npos);
  json wrong_output = fp32({1, 3, 2, 2}, std::vector<float>(12));
  wrong_output["outputs"] = {{{"name", "logits"}}};
  EXPECT_NE(infer_request_error(wrong_output).find("\"probabilities\""), std::string::npos);
  wrong_output["outputs"] = {{{"name", "probabilities"}, {"parameters", {{"classification", 0}}}}};
  EXPECT_NE(infer_request_error(wrong_output).find("classification"), std::string::npos);
}

TEST(OpenInferenceProtocol, MetadataDescribesTheTensors) {
  const json server = server_metadata("1.2.3");
  EXPECT_EQ(server["name"], "tabby");
  EXPECT_EQ(server["extensions"], json({"classification", "binary_tensor_data"}));
  const json model = model_metadata(cats());
  EXPECT_EQ(model["name"], "cats");
  EXPECT_EQ(model["inputs"][0]["shape"], json({-1, 3, 2, 2}));
  EXPECT_EQ(model["outputs"][0]["shape"], json({-1, 2}));
  EXPECT_EQ(model["parameters"]["classes"], json({"cat", "dog"}));
}

}  // namespace
}  // namespace tabby::serve
