// `tabby serve --grpc-port` as gRPC clients meet it: a real server process,
// a grpc++ client of the Open Inference Protocol's GRPCInferenceService, and
// tritonclient.grpc (tests/python/tritonclient_grpc_check.py). The answers
// equal the HTTP routes' (one InferenceService under both), errors carry
// their gRPC codes, and SIGTERM drains the calls in flight.
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <regex>
#include <thread>

#include "serve_process.h"
#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/api/train_job.h"
#include "tabby/image/resize.h"
#include "tabby/report/base64.h"
#include "tabby/server/grpc/inference.grpc.pb.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServeProcess;
using Stub = inference::GRPCInferenceService::Stub;

constexpr const char* kGrpcServeModel = R"(name = "tiny-grpc"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
activation = "relu"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
units = 2
)";

// Two classes told apart by their dominant channel; PNGs for training, and
// for the requests PNGs and JPEGs of other sizes than the model's.
Image grpc_test_image(int c, int i, std::mt19937& rng) {
  std::uniform_int_distribution<int> noise(0, 60);
  Image image(22 + i % 5, 18 + i % 3);
  for (size_t p = 0; p < image.pixels.size(); ++p) {
    image.pixels[p] = static_cast<uint8_t>((static_cast<int>(p % 3) == c ? 160 : 40) + noise(rng));
  }
  return image;
}

class GrpcServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(testing::scratch_dir("serve_grpc_" + std::to_string(::getpid())));
    std::mt19937 rng(7);
    for (int c = 0; c < 2; ++c) {
      for (int i = 0; i < 8; ++i) {
        testing::write_bytes(*dir_ / "train" / (c ? "green" : "red") / ("img" + std::to_string(i) + ".png"),
                             encode_png(grpc_test_image(c, i, rng)));
      }
    }
    encoded_ = new std::vector<std::string>{encode_png(grpc_test_image(0, 1, rng)), encode_jpeg(grpc_test_image(1, 2, rng)),
                                            encode_png(grpc_test_image(1, 3, rng))};
    testing::write_bytes(*dir_ / "model.toml", kGrpcServeModel);
    TrainJob job;
    job.model = (*dir_ / "model.toml").string();
    job.data.data = (*dir_ / "train").string();
    job.image_height = job.image_width = 16;
    job.train_overrides = {{"epochs", 1}, {"batch_size", 8}, {"lr", 0.02}};
    job.device = "cpu";
    job.threads = 1;
    job.out = *dir_ / "cats";
    run_train_job(job);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    delete encoded_;
  }
  static ServeProcess start(std::vector<std::string> flags, const std::string& name) {
    flags.insert(flags.begin(), (*dir_ / "cats").string());
    flags.insert(flags.end(), {"--threads", "1", "--device", "cpu", "--grpc-port", "0"});
    return ServeProcess(flags, *dir_ / (name + ".log"));
  }
  static std::unique_ptr<Stub> stub(const ServeProcess& s) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    return inference::GRPCInferenceService::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(s.grpc_port()), grpc::InsecureChannelCredentials(), args));
  }
  static const std::vector<std::string>& encoded() { return *encoded_; }
  static fs::path* dir_;
  static std::vector<std::string>* encoded_;
};
fs::path* GrpcServeTest::dir_ = nullptr;
std::vector<std::string>* GrpcServeTest::encoded_ = nullptr;

std::unique_ptr<grpc::ClientContext> context_with_deadline(int seconds = 60) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return c;
}

bool grpc_ready(Stub& stub) {
  inference::ServerReadyResponse out;
  return stub.ServerReady(context_with_deadline(5).get(), {}, &out).ok() && out.ready();
}

bool wait_grpc_ready(Stub& stub) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (grpc_ready(stub)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

inference::ModelInferRequest bytes_request(const std::vector<std::string>& images, bool raw) {
  inference::ModelInferRequest r;
  r.set_model_name("cats");
  auto* in = r.add_inputs();
  in->set_name("image_bytes");
  in->set_datatype("BYTES");
  in->add_shape(static_cast<int64_t>(images.size()));
  std::string contents;
  for (const auto& image : images) {
    if (raw) {
      const auto n = static_cast<uint32_t>(image.size());
      contents.append(reinterpret_cast<const char*>(&n), 4);  // little-endian, as the host
      contents += image;
    } else {
      in->mutable_contents()->add_bytes_contents(image);
    }
  }
  if (raw) r.add_raw_input_contents(contents);
  return r;
}

// The model's input pixels of `encoded`, as the HTTP route's decoding gives them.
std::vector<float> pixels_of(const std::string& encoded) {
  std::vector<uint8_t> hwc(16 * 16 * 3);
  decode_image_resized(reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size(), 16, 16, false, hwc.data());
  std::vector<float> chw(hwc.size());
  for (size_t p = 0; p < 256; ++p) {
    for (size_t ch = 0; ch < 3; ++ch) chw[ch * 256 + p] = hwc[p * 3 + ch];
  }
  return chw;
}

inference::ModelInferRequest fp32_request(const std::vector<float>& pixels, int64_t images, bool raw) {
  inference::ModelInferRequest r;
  r.set_model_name("cats");
  auto* in = r.add_inputs();
  in->set_name("images");
  in->set_datatype("FP32");
  for (const int64_t d : {images, int64_t{3}, int64_t{16}, int64_t{16}}) in->add_shape(d);
  if (raw) {
    r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(pixels.data()), pixels.size() * 4));
  } else {
    in->mutable_contents()->mutable_fp32_contents()->Add(pixels.begin(), pixels.end());
  }
  return r;
}

std::vector<float> raw_floats(const inference::ModelInferResponse& r) {
  EXPECT_EQ(r.raw_output_contents_size(), 1);
  if (r.raw_output_contents_size() != 1) return {};
  const std::string& raw = r.raw_output_contents(0);
  std::vector<float> out(raw.size() / 4);
  std::memcpy(out.data(), raw.data(), out.size() * 4);
  return out;
}

grpc::Status infer(Stub& stub, const inference::ModelInferRequest& request, inference::ModelInferResponse& out) {
  return stub.ModelInfer(context_with_deadline().get(), request, &out);
}

// The HTTP route's probabilities of encoded images.
std::vector<float> http_probabilities(ServeProcess& s, const std::vector<std::string>& images) {
  json data = json::array();
  for (const auto& image : images) data.push_back(report::base64_encode(image));
  const json body = {{"inputs", {{{"name", "image_bytes"}, {"shape", {images.size()}}, {"datatype", "BYTES"}, {"data", data}}}}};
  auto r = s.client().Post("/v2/models/cats/infer", body.dump(), "application/json");
  EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
  if (!r || r->status != 200) return {};
  return json::parse(r->body)["outputs"][0]["data"].get<std::vector<float>>();
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-5) << "at " << k;
}

TEST_F(GrpcServeTest, HealthAndMetadataAnswer) {
  ServeProcess s = start({}, "health");
  ASSERT_GT(s.grpc_port(), 0) << s.stderr_text();
  EXPECT_NE(s.stderr_text().find("and grpc://127.0.0.1:"), std::string::npos) << s.stderr_text();
  auto st = stub(s);
  inference::ServerLiveResponse live;
  ASSERT_TRUE(st->ServerLive(context_with_deadline().get(), {}, &live).ok());
  EXPECT_TRUE(live.live());
  ASSERT_TRUE(wait_grpc_ready(*st)) << s.stderr_text();

  inference::ServerMetadataResponse server;
  ASSERT_TRUE(st->ServerMetadata(context_with_deadline().get(), {}, &server).ok());
  EXPECT_EQ(server.name(), "tabby");
  EXPECT_EQ(server.version(), TABBY_VERSION);
  const std::vector<std::string> extensions(server.extensions().begin(), server.extensions().end());
  EXPECT_NE(std::find(extensions.begin(), extensions.end(), "classification"), extensions.end());

  inference::ModelMetadataRequest which;
  which.set_name("cats");
  inference::ModelMetadataResponse model;
  ASSERT_TRUE(st->ModelMetadata(context_with_deadline().get(), which, &model).ok());
  EXPECT_EQ(model.name(), "cats");
  EXPECT_EQ(model.platform(), "tabby_libtorch");
  ASSERT_EQ(model.inputs_size(), 2);
  EXPECT_EQ(model.inputs(0).name(), "images");
  EXPECT_EQ(model.inputs(0).datatype(), "FP32");
  EXPECT_EQ(std::vector<int64_t>(model.inputs(0).shape().begin(), model.inputs(0).shape().end()),
            (std::vector<int64_t>{-1, 3, 16, 16}));
  EXPECT_EQ(model.inputs(1).datatype(), "BYTES");
  ASSERT_EQ(model.outputs_size(), 1);
  EXPECT_EQ(model.outputs(0).name(), "probabilities");
  EXPECT_EQ(std::vector<int64_t>(model.outputs(0).shape().begin(), model.outputs(0).shape().end()),
            (std::vector<int64_t>{-1, 2}));

  inference::ModelReadyRequest ready_cats;
  ready_cats.set_name("cats");
  inference::ModelReadyResponse ready;
  ASSERT_TRUE(st->ModelReady(context_with_deadline().get(), ready_cats, &ready).ok());
  EXPECT_TRUE(ready.ready());
  inference::ModelReadyRequest dogs;
  dogs.set_name("dogs");
  const grpc::Status unknown = st->ModelReady(context_with_deadline().get(), dogs, &ready);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(unknown.error_message().find("cats"), std::string::npos) << unknown.error_message();
  which.set_version("2");
  EXPECT_EQ(st->ModelMetadata(context_with_deadline().get(), which, &model).error_code(), grpc::StatusCode::NOT_FOUND);

  const std::string metrics = s.client().Get("/metrics")->body;
  EXPECT_NE(metrics.find(R"(tabby_requests_total{route="grpc ModelMetadata",model="cats",status="200"} 1)"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(tabby_requests_total{route="grpc ModelReady",model="",status="404"} 1)"), std::string::npos)
      << metrics;
}

TEST_F(GrpcServeTest, ProbabilitiesAreThoseOfTheHttpRoute) {
  ServeProcess s = start({}, "probabilities");
  auto st = stub(s);
  ASSERT_TRUE(wait_grpc_ready(*st)) << s.stderr_text();
  const std::vector<float> want = http_probabilities(s, encoded());
  ASSERT_EQ(want.size(), 6u);

  for (const bool raw : {true, false}) {
    SCOPED_TRACE(raw ? "raw_input_contents" : "bytes_contents");
    inference::ModelInferRequest request = bytes_request(encoded(), raw);
    request.set_id("batch-7");
    inference::ModelInferResponse out;
    const grpc::Status status = infer(*st, request, out);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(out.model_name(), "cats");
    EXPECT_EQ(out.model_version(), "1");
    EXPECT_EQ(out.id(), "batch-7");
    ASSERT_EQ(out.outputs_size(), 1);
    EXPECT_EQ(out.outputs(0).name(), "probabilities");
    EXPECT_EQ(out.outputs(0).datatype(), "FP32");
    EXPECT_EQ(std::vector<int64_t>(out.outputs(0).shape().begin(), out.outputs(0).shape().end()),
              (std::vector<int64_t>{3, 2}));
    expect_near_all(raw_floats(out), want);
  }

  std::vector<float> pixels;
  for (const auto& image : encoded()) {
    const auto p = pixels_of(image);
    pixels.insert(pixels.end(), p.begin(), p.end());
  }
  for (const bool raw : {true, false}) {
    SCOPED_TRACE(raw ? "raw FP32" : "fp32_contents");
    inference::ModelInferResponse out;
    const grpc::Status status = infer(*st, fp32_request(pixels, 3, raw), out);
    ASSERT_TRUE(status.ok()) << status.error_message();
    expect_near_all(raw_floats(out), want);
  }

  // The classification extension: BYTES "probability:index:label", the best first.
  inference::ModelInferRequest request = bytes_request(encoded(), true);
  auto* wanted = request.add_outputs();
  wanted->set_name("probabilities");
  (*wanted->mutable_parameters())["classification"].set_int64_param(2);
  inference::ModelInferResponse out;
  const grpc::Status status = infer(*st, request, out);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(out.outputs_size(), 1);
  EXPECT_EQ(out.outputs(0).datatype(), "BYTES");
  EXPECT_EQ(std::vector<int64_t>(out.outputs(0).shape().begin(), out.outputs(0).shape().end()),
            (std::vector<int64_t>{3, 2}));
  ASSERT_EQ(out.raw_output_contents_size(), 1);
  const std::string& raw = out.raw_output_contents(0);
  std::vector<std::string> elements;
  for (size_t at = 0; at + 4 <= raw.size();) {
    uint32_t n = 0;
    std::memcpy(&n, raw.data() + at, 4);
    elements.push_back(raw.substr(at + 4, n));
    at += 4 + n;
  }
  ASSERT_EQ(elements.size(), 6u);
  const std::regex element("([0-9.]+):([01]):(red|green)");
  for (size_t i = 0; i < 3; ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(elements[2 * i], m, element)) << elements[2 * i];
    const int best = want[2 * i] >= want[2 * i + 1] ? 0 : 1;
    EXPECT_EQ(std::stoi(m[2]), best) << elements[2 * i];
    EXPECT_EQ(m[3], best == 0 ? "green" : "red") << elements[2 * i];  // classes in name order
    EXPECT_NEAR(std::stod(m[1]), want[2 * i + best], 1e-5);
  }
}

TEST_F(GrpcServeTest, MistakesGetTheirGrpcCodes) {
  ServeProcess s = start({"--max-body-mb", "1"}, "mistakes");
  auto st = stub(s);
  ASSERT_TRUE(wait_grpc_ready(*st)) << s.stderr_text();
  inference::ModelInferResponse out;
  const auto expect_code = [&](const inference::ModelInferRequest& request, grpc::StatusCode code,
                               const std::string& words) {
    const grpc::Status status = infer(*st, request, out);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_NE(status.error_message().find(words), std::string::npos) << status.error_message();
  };

  inference::ModelInferRequest unknown = bytes_request({encoded()[0]}, true);
  unknown.set_model_name("dogs");
  expect_code(unknown, grpc::StatusCode::NOT_FOUND, "no model named 'dogs'");

  const std::vector<float> one = pixels_of(encoded()[0]);
  inference::ModelInferRequest wrong_shape = fp32_request(one, 1, true);
  wrong_shape.mutable_inputs(0)->set_shape(2, 32);
  expect_code(wrong_shape, grpc::StatusCode::INVALID_ARGUMENT, "shape [N, 3, 16, 16]");

  inference::ModelInferRequest short_fp32 = fp32_request(one, 1, true);
  short_fp32.mutable_raw_input_contents(0)->resize(one.size() * 4 - 3);
  expect_code(short_fp32, grpc::StatusCode::INVALID_ARGUMENT, "bytes of binary data");

  inference::ModelInferRequest short_bytes = bytes_request({encoded()[0]}, true);
  short_bytes.mutable_raw_input_contents(0)->resize(encoded()[0].size() / 2);
  expect_code(short_bytes, grpc::StatusCode::INVALID_ARGUMENT, "BYTES element 0 claims");

  inference::ModelInferRequest too_few = bytes_request({encoded()[0]}, false);
  too_few.mutable_inputs(0)->set_shape(0, 2);
  expect_code(too_few, grpc::StatusCode::INVALID_ARGUMENT, "bytes_contents holds 1 elements");

  inference::ModelInferRequest not_an_image = bytes_request({"not an image"}, true);
  expect_code(not_an_image, grpc::StatusCode::INVALID_ARGUMENT, "");

  inference::ModelInferRequest int8 = bytes_request({encoded()[0]}, true);
  int8.mutable_inputs(0)->set_datatype("INT8");
  expect_code(int8, grpc::StatusCode::INVALID_ARGUMENT, "datatype 'INT8'");

  inference::ModelInferRequest both = bytes_request({encoded()[0]}, true);
  both.mutable_inputs(0)->mutable_contents()->add_bytes_contents(encoded()[0]);
  expect_code(both, grpc::StatusCode::INVALID_ARGUMENT, "not both");

  inference::ModelInferRequest too_large = bytes_request({std::string(1536 * 1024, 'x')}, true);
  expect_code(too_large, grpc::StatusCode::RESOURCE_EXHAUSTED, "");

  // The server still answers after them all.
  inference::ModelInferResponse fine;
  EXPECT_TRUE(infer(*st, bytes_request({encoded()[0]}, true), fine).ok());
}

int grpc_queue_depth(ServeProcess& s) {
  std::smatch m;
  const auto r = s.client().Get("/metrics");
  if (!r) return -1;
  const std::string text = r->body;
  return std::regex_search(text, m, std::regex(R"(tabby_queue_depth\{model="cats"\} ([0-9]+))")) ? std::stoi(m[1]) : -1;
}

TEST_F(GrpcServeTest, SigtermFinishesGrpcCallsInFlight) {
  ServeProcess s = start({"--max-batch-delay-ms", "5000", "--max-batch-size", "8"}, "drain");
  auto st = stub(s);
  ASSERT_TRUE(wait_grpc_ready(*st)) << s.stderr_text();
  grpc::Status in_flight_status(grpc::StatusCode::UNKNOWN, "not answered");
  inference::ModelInferResponse in_flight_out;
  std::thread in_flight([&] { in_flight_status = infer(*st, bytes_request({encoded()[0]}, true), in_flight_out); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (grpc_queue_depth(s) < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool queued = grpc_queue_depth(s) >= 1;
  kill(s.pid(), SIGTERM);
  in_flight.join();
  ASSERT_TRUE(queued) << s.stderr_text();
  EXPECT_TRUE(in_flight_status.ok()) << in_flight_status.error_message();
  EXPECT_EQ(raw_floats(in_flight_out).size(), 2u);
  // Draining or gone: either way not ready, and no new inference.
  EXPECT_FALSE(grpc_ready(*st));
  inference::ModelInferResponse refused;
  EXPECT_FALSE(infer(*st, bytes_request({encoded()[0]}, true), refused).ok());
  ASSERT_TRUE(s.wait_exit(std::chrono::seconds(30))) << s.stderr_text();
  EXPECT_EQ(s.exit_status(), 0) << s.stderr_text();
}

// A gRPC port another server holds: one error naming it, and no server.
TEST_F(GrpcServeTest, ABusyGrpcPortIsOneClearError) {
  ServeProcess first = start({}, "busy_first");
  ASSERT_GT(first.grpc_port(), 0) << first.stderr_text();
  ServeProcess second({(*dir_ / "cats").string(), "--threads", "1", "--device", "cpu", "--grpc-port",
                       std::to_string(first.grpc_port())},
                      *dir_ / "busy_second.log");
  ASSERT_TRUE(second.wait_exit(std::chrono::seconds(60))) << second.stderr_text();
  EXPECT_NE(second.exit_status(), 0);
  EXPECT_NE(second.stderr_text().find("cannot listen for gRPC on 127.0.0.1:" + std::to_string(first.grpc_port())),
            std::string::npos)
      << second.stderr_text();
  EXPECT_NE(second.stderr_text().find("--grpc-port 0"), std::string::npos) << second.stderr_text();
}

// A real client of the protocol: NVIDIA's tritonclient.grpc (from PyPI, in
// TABBY_PYTOOLS; scripts/install-test-tools.sh) reads tabby's answers.
TEST_F(GrpcServeTest, TritonclientGrpcTalksToTabby) {
  ServeProcess s = start({}, "tritonclient");
  auto st = stub(s);
  ASSERT_TRUE(wait_grpc_ready(*st)) << s.stderr_text();
  const fs::path image = *dir_ / "request.jpg";
  testing::write_bytes(image, encoded()[1]);
  const std::vector<float> want = http_probabilities(s, {encoded()[1]});
  ASSERT_EQ(want.size(), 2u);
  const std::string pytools = std::getenv("TABBY_PYTOOLS") ? std::getenv("TABBY_PYTOOLS") : "";
  const std::string python = std::getenv("TABBY_PYTHON") ? std::getenv("TABBY_PYTHON") : "python3";
  const std::string script = std::string(TABBY_SOURCE_DIR) + "/tests/python/tritonclient_grpc_check.py";
  const auto r = testing::run_command("PYTHONPATH=" + testing::shell_quote(pytools) + " " + testing::shell_quote(python) +
                                      " " + testing::shell_quote(script) + " --url 127.0.0.1:" +
                                      std::to_string(s.grpc_port()) + " --model cats --image " +
                                      testing::shell_quote(image.string()) + " --expect " + std::to_string(want[0]) +
                                      "," + std::to_string(want[1]));
  if (r.exit_code == 2) {
    // Opted out as the HTTP tritonclient test is, where nothing can be installed.
    const char* opted_out = std::getenv("TABBY_NO_BROWSER");
    if (opted_out && std::string(opted_out) == "1") GTEST_SKIP() << "no tritonclient (TABBY_NO_BROWSER=1): " << r.err;
    FAIL() << r.err << "hint: scripts/install-test-tools.sh installs tritonclient";
  }
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace tabby
