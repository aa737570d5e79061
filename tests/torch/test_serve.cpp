// `tabby serve` as clients meet it: a real server process on 127.0.0.1 and
// HTTP requests. Every route and error code, probabilities equal to
// `tabby predict`, batches formed under concurrency, a full queue answered
// 503 with Retry-After, and SIGTERM draining the requests in flight.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <regex>
#include <thread>

#include "serve_process.h"
#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/api/train_job.h"
#include "tabby/image/resize.h"
#include "tabby/report/base64.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

// A client writing to a connection the server closed gets EPIPE, not a signal
// that ends the test (Debian 13's httplib does not pass MSG_NOSIGNAL).
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ServeProcess;

constexpr const char* kServeModel = R"(name = "tiny-serve"
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

void write_serve_images(const fs::path& root, int per_class, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < per_class; ++i) {
      Image image(24 + i % 7, 20);
      for (size_t p = 0; p < image.pixels.size(); ++p) {
        image.pixels[p] = static_cast<uint8_t>((static_cast<int>(p % 3) == c ? 160 : 40) + noise(rng));
      }
      testing::write_bytes(root / (c ? "red_free" : "reddish") / ("img" + std::to_string(i) + ".png"), encode_png(image));
    }
  }
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ctest runs each test of the suite as its own process, in parallel.
    dir_ = new fs::path(testing::scratch_dir("serve_" + std::to_string(::getpid())));
    write_serve_images(*dir_ / "train", 10, 1);
    write_serve_images(*dir_ / "test", 4, 2);
    testing::write_bytes(*dir_ / "model.toml", kServeModel);
    TrainJob job;
    job.model = (*dir_ / "model.toml").string();
    job.data.data = (*dir_ / "train").string();
    job.image_height = job.image_width = 16;
    job.train_overrides = {{"epochs", 2}, {"batch_size", 8}, {"lr", 0.02}};
    job.device = "cpu";
    job.threads = 1;
    job.out = *dir_ / "cats";
    run_train_job(job);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static fs::path run() { return *dir_ / "cats"; }
  static std::vector<fs::path> images() {
    std::vector<fs::path> out;
    for (const char* c : {"reddish", "red_free"}) {
      for (int i = 0; i < 4; ++i) out.push_back(*dir_ / "test" / c / ("img" + std::to_string(i) + ".png"));
    }
    return out;
  }
  static ServeProcess start(std::vector<std::string> flags, const std::string& name) {
    flags.insert(flags.begin(), run().string());
    flags.insert(flags.end(), {"--threads", "1", "--device", "cpu"});
    return ServeProcess(flags, *dir_ / (name + ".log"));
  }
  static fs::path* dir_;
};
fs::path* ServeTest::dir_ = nullptr;

json body_json(const httplib::Result& r) { return json::parse(r->body, nullptr, false); }

TEST_F(ServeTest, EveryRouteAnswers) {
  ServeProcess s = start({}, "routes");
  ASSERT_GT(s.port(), 0) << s.stderr_text();
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  auto c = s.client();
  auto r = c.Get("/v2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r)["name"], "tabby");
  EXPECT_EQ(c.Get("/v2/health/live")->status, 200);
  EXPECT_EQ(body_json(c.Get("/v2/health/ready"))["ready"], true);
  r = c.Get("/v2/models/cats");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r)["inputs"][0]["shape"], json({-1, 3, 16, 16}));
  EXPECT_EQ(body_json(r)["parameters"]["classes"], json({"red_free", "reddish"}));
  EXPECT_EQ(c.Get("/v2/models/cats/ready")->status, 200);
  for (const char* path : {"/v2/models/dogs", "/v2/models/dogs/ready", "/nothing/here"}) {
    r = c.Get(path);
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_TRUE(body_json(r).contains("error")) << path << ": " << r->body;
  }
  r = c.Post("/predictions/dogs", "x", "image/png");
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(body_json(r)["error"].get<std::string>().find("cats"), std::string::npos) << r->body;
  r = c.Get("/");
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("<title>tabby serve</title>"), std::string::npos);
  EXPECT_NE(r->body.find("[\"cats\"]"), std::string::npos);
  r = c.Get("/metrics");
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("tabby_requests_total{route=\"/v2\",model=\"\",status=\"200\"} 1"), std::string::npos) << r->body;
  // A served model's name labels its requests; a name the client made up does not.
  EXPECT_NE(r->body.find("tabby_requests_total{route=\"/v2/models/{m}\",model=\"cats\",status=\"200\"} 1"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("tabby_requests_total{route=\"/predictions/{m}\",model=\"\",status=\"404\"} 1"),
            std::string::npos)
      << r->body;
  EXPECT_EQ(r->body.find("model=\"dogs\""), std::string::npos) << r->body;
}

// `tabby predict`'s probabilities for `files`, by file.
std::map<std::string, std::vector<double>> predicted(const fs::path& run, const std::vector<fs::path>& files) {
  std::vector<std::string> args = {"predict", run.string(), "--top-k", "2", "--json", "--device", "cpu"};
  for (const auto& f : files) args.push_back(f.string());
  const auto r = testing::run_tabby(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::vector<double>> out;
  for (const auto& p : json::parse(r.out)) {
    std::vector<double> probs(2);
    for (const auto& t : p["top"]) probs[t["label"] == "red_free" ? 0 : 1] = t["probability"];
    out[p["file"]] = probs;
  }
  return out;
}

TEST_F(ServeTest, ProbabilitiesAreThoseOfTabbyPredict) {
  ServeProcess s = start({}, "predict");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  auto c = s.client();
  const auto files = images();
  const auto expected = predicted(run(), files);
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    const std::string bytes = read_file(f);
    const auto& want = expected.at(f.string());
    // The raw body, as curl --data-binary sends it.
    auto r = c.Post("/predictions/cats?top_k=2", bytes, "application/x-www-form-urlencoded");
    ASSERT_EQ(r->status, 200) << r->body;
    for (const auto& t : body_json(r)["top_k"]) EXPECT_NEAR(t["probability"].get<double>(), want[t["index"].get<int>()], 1e-5);
    // A multipart form, as a browser's form sends it.
    httplib::MultipartFormDataItems form = {{"file", bytes, f.filename().string(), "image/png"}};
    r = c.Post("/predictions/cats", form);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_NEAR(body_json(r)["probability"].get<double>(), std::max(want[0], want[1]), 1e-5);
    // OIP with the encoded image ...
    json infer = {{"inputs", {{{"name", "image_bytes"}, {"shape", {1}}, {"datatype", "BYTES"},
                               {"data", {report::base64_encode(bytes)}}}}}};
    r = c.Post("/v2/models/cats/infer", infer.dump(), "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    const json probs = body_json(r)["outputs"][0]["data"];
    EXPECT_NEAR(probs[0].get<double>(), want[0], 1e-5);
    EXPECT_NEAR(probs[1].get<double>(), want[1], 1e-5);
    // ... and with its pixels, resized as training resized them.
    std::vector<uint8_t> hwc(16 * 16 * 3);
    decode_image_resized(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 16, 16, false, hwc.data());
    std::vector<float> chw(hwc.size());
    for (size_t p = 0; p < 256; ++p) {
      for (size_t ch = 0; ch < 3; ++ch) chw[ch * 256 + p] = hwc[p * 3 + ch];
    }
    infer = {{"inputs", {{{"name", "images"}, {"shape", {1, 3, 16, 16}}, {"datatype", "FP32"}, {"data", chw}}}},
             {"outputs", {{{"name", "probabilities"}, {"parameters", {{"classification", 1}}}}}}};
    r = c.Post("/v2/models/cats/infer", infer.dump(), "application/json");
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string top = body_json(r)["outputs"][0]["data"][0];
    EXPECT_EQ(top.substr(top.rfind(':') + 1), want[0] > want[1] ? "red_free" : "reddish") << top;
  }
}

// A "probability:index:label" string of the classification extension.
void expect_top_string(const std::string& top, const std::vector<double>& want, const std::string& where) {
  static const std::vector<std::string> classes = {"red_free", "reddish"};
  const size_t first = top.find(':'), second = top.rfind(':');
  ASSERT_TRUE(first != std::string::npos && second != first) << where << ": " << top;
  const int index = std::stoi(top.substr(first + 1, second - first - 1));
  ASSERT_TRUE(index == 0 || index == 1) << where << ": " << top;
  EXPECT_NEAR(std::stod(top.substr(0, first)), want[static_cast<size_t>(index)], 1e-5) << where << ": " << top;
  EXPECT_EQ(top.substr(second + 1), classes[static_cast<size_t>(index)]) << where;
}

// tritonclient.http at its defaults (binary tensor data both ways; an encoded
// image can only go as binary), and with JSON inputs and outputs, with and
// without the classification extension: tabby predict's probabilities.
TEST_F(ServeTest, TritonclientHttpGetsTheProbabilitiesOfTabbyPredict) {
  std::vector<fs::path> files = {images().front(), images().back()};
  // A JPEG too, of the first PNG's pixels.
  const fs::path jpeg = *dir_ / "tritonclient" / "photo.jpg";
  {
    const std::string png = read_file(files.front());
    Image image(16, 16);
    decode_image_resized(reinterpret_cast<const uint8_t*>(png.data()), png.size(), 16, 16, false, image.pixels.data());
    testing::write_bytes(jpeg, encode_jpeg(image));
  }
  files.push_back(jpeg);
  json cases = {{"height", 16}, {"width", 16}, {"images", json::array()}};
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string bytes = read_file(files[i]);
    std::vector<uint8_t> hwc(16 * 16 * 3);
    decode_image_resized(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), 16, 16, false, hwc.data());
    std::vector<float> chw(hwc.size());
    for (size_t p = 0; p < 256; ++p) {
      for (size_t ch = 0; ch < 3; ++ch) chw[ch * 256 + p] = hwc[p * 3 + ch];
    }
    // float32 as the host lays it out: little-endian on every host tabby builds for.
    const fs::path pixels = *dir_ / "tritonclient" / ("pixels" + std::to_string(i) + ".f32");
    testing::write_bytes(pixels, std::string(reinterpret_cast<const char*>(chw.data()), chw.size() * sizeof(float)));
    cases["images"].push_back({{"file", files[i].string()}, {"pixels", pixels.string()}});
  }
  testing::write_bytes(*dir_ / "tritonclient" / "cases.json", cases.dump());
  const auto expected = predicted(run(), files);

  ServeProcess s = start({}, "tritonclient");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const fs::path script = fs::path(std::getenv("TABBY_SOURCE_DIR")) / "tests" / "python" / "tritonclient_http_check.py";
  const auto r = testing::run_command(
      "PYTHONPATH=" + testing::shell_quote(std::getenv("TABBY_PYTOOLS")) + " " +
      testing::shell_quote(std::getenv("TABBY_PYTHON")) + " " + testing::shell_quote(script.string()) + " " +
      testing::shell_quote("127.0.0.1:" + std::to_string(s.port())) + " cats " +
      testing::shell_quote((*dir_ / "tritonclient" / "cases.json").string()));
  if (r.exit_code == 2) {
    // The machine where nothing can be installed (the GPU machine) opts out as for the browser test.
    const char* opted_out = std::getenv("TABBY_NO_BROWSER");
    if (opted_out && std::string(opted_out) == "1") GTEST_SKIP() << "no tritonclient (TABBY_NO_BROWSER=1): " << r.err;
    FAIL() << r.err << "hint: scripts/install-test-tools.sh installs tritonclient";
  }
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << s.stderr_text();
  const json got = json::parse(r.out);
  for (const auto& f : files) {
    const auto& want = expected.at(f.string());
    const json& answers = got["images"][f.string()];
    for (const char* variant : {"fp32_binary", "fp32_json", "fp32_json_out", "bytes_binary"}) {
      const std::string where = f.filename().string() + " " + variant;
      const json& probs = answers[variant];
      ASSERT_TRUE(probs.size() == 1 && probs[0].size() == 2) << where << ": " << answers.dump();
      EXPECT_NEAR(probs[0][0].get<double>(), want[0], 1e-5) << where;
      EXPECT_NEAR(probs[0][1].get<double>(), want[1], 1e-5) << where;
      const json& top = answers[std::string(variant) + "_top"];
      ASSERT_EQ(top.size(), 1u) << where << ": " << top.dump();
      ASSERT_EQ(top[0].size(), 2u) << where << ": " << top.dump();
      for (const auto& t : top[0]) expect_top_string(t.get<std::string>(), want, where + "_top");
      EXPECT_GE(std::stod(top[0][0].get<std::string>()), std::stod(top[0][1].get<std::string>())) << where;
    }
  }
  ASSERT_EQ(got["batch"].size(), files.size()) << r.out;
  ASSERT_EQ(got["batch_top"].size(), files.size()) << r.out;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& want = expected.at(files[i].string());
    EXPECT_NEAR(got["batch"][i][0].get<double>(), want[0], 1e-5) << files[i];
    EXPECT_NEAR(got["batch"][i][1].get<double>(), want[1], 1e-5) << files[i];
    for (const auto& t : got["batch_top"][i]) expect_top_string(t.get<std::string>(), want, "batch " + files[i].string());
  }
  // A binary body whose header length runs past it: a 400 that says so.
  auto c = s.client();
  const auto bad = c.Post("/v2/models/cats/infer", {{"Inference-Header-Content-Length", "999"}}, "{}",
                          "application/octet-stream");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("the body holds only 2 bytes"), std::string::npos) << bad->body;
}

// The head of an upload over --max-body-mb gets its 413 at once: none of the
// body is read first (without the check, httplib reads and discards it all,
// here waiting out the read timeout for a body that never comes).
TEST_F(ServeTest, AnUploadOverTheLimitIsRefusedFromItsHead) {
  ServeProcess s = start({"--max-body-mb", "1"}, "early413");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string head = "POST /predictions/cats HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                           "Content-Length: 100000000\r\n\r\n";
  ASSERT_EQ(send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  timeval wait{5, 0};  // the server's read timeout is 10 s
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
  const auto sent = std::chrono::steady_clock::now();
  std::string answer;
  char buf[4096];
  ssize_t n;
  while (answer.find("}") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0) {
    answer.append(buf, static_cast<size_t>(n));
  }
  const auto waited = std::chrono::steady_clock::now() - sent;
  close(fd);
  EXPECT_EQ(answer.rfind("HTTP/1.1 413", 0), 0u) << answer;
  // The client is told to stop and hang up (httplib itself keeps the socket until it does).
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  EXPECT_NE(answer.find("larger than this server takes"), std::string::npos) << answer;
  EXPECT_LT(waited, std::chrono::seconds(3));
}

TEST_F(ServeTest, MistakesGetJsonErrorsWithTheirStatus) {
  ServeProcess s = start({"--max-body-mb", "1", "--max-image-megapixels", "0.0005"}, "errors");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  auto c = s.client();
  auto expect_error = [&](const httplib::Result& r, int status, const std::string& words) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json j = body_json(r);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(words), std::string::npos) << r->body;
  };
  expect_error(c.Post("/predictions/cats", "not an image", "image/jpeg"), 400, "cannot read the upload as an image");
  expect_error(c.Post("/predictions/cats", "", "image/jpeg"), 400, "empty");
  expect_error(c.Post("/v2/models/cats/infer", "{\"inputs\": [", "application/json"), 400, "not valid JSON");
  expect_error(c.Post("/v2/models/cats/infer", R"({"inputs": [{"shape": [1, 3, 8, 8], "datatype": "FP32", "data": []}]})",
                      "application/json"), 400, "[N, 3, 16, 16]");
  // An httplib client sends the whole body before it reads: the server has
  // answered 413 from the head (AnUploadOverTheLimitIsRefusedFromItsHead), and
  // depending on httplib's version the client reads that answer or finds the
  // connection closed under its feet.
  const std::string big(2 * 1024 * 1024, 'x');
  if (auto r = c.Post("/predictions/cats", big, "image/jpeg")) {
    expect_error(r, 413, "larger than this server takes");
  } else {
    EXPECT_TRUE(r.error() == httplib::Error::Write || r.error() == httplib::Error::Read) << httplib::to_string(r.error());
  }
  const Image huge(40, 40);  // 1,600 pixels, over the 500 allowed here
  expect_error(c.Post("/predictions/cats", encode_png(huge), "image/png"), 400, "40x40 pixels");
  const std::string image = read_file(images().front());
  expect_error(c.Post("/predictions/cats?top_k=zero", image, "image/png"), 400, "top_k");
  auto r = c.Post("/predictions/cats?threshold=1", image, "image/png");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(body_json(r)["label"], "unknown");
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);  // still serving after all that
}

uint64_t batches_larger_than_one(httplib::Client& c) {
  const std::string text = c.Get("/metrics")->body;
  std::smatch one, all;
  const std::regex le1(R"(tabby_batch_images_bucket\{model="cats",le="1"\} ([0-9]+))");
  const std::regex count(R"(tabby_batch_images_count\{model="cats"\} ([0-9]+))");
  if (!std::regex_search(text, one, le1) || !std::regex_search(text, all, count)) return 0;
  return std::stoull(all[1]) - std::stoull(one[1]);
}

int queue_depth(httplib::Client& c) {
  std::smatch m;
  const auto r = c.Get("/metrics");
  if (!r) return -1;
  const std::string text = r->body;
  return std::regex_search(text, m, std::regex(R"(tabby_queue_depth\{model="cats"\} ([0-9]+))")) ? std::stoi(m[1]) : -1;
}

// One upload posted from its own thread, which is joined when the scope ends,
// so a failed assertion cannot leave it running (std::thread would terminate
// the test binary). status() waits for the answer: its HTTP status, or -1.
class BackgroundUpload {
 public:
  BackgroundUpload(ServeProcess& s, const std::string& image)
      : thread_([this, &s, &image] {
          auto c = s.client();
          auto r = c.Post("/predictions/cats", image, "image/png");
          status_ = r ? r->status : -1;
        }) {}
  ~BackgroundUpload() { join(); }
  int status() {
    join();
    return status_;
  }

 private:
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  int status_ = 0;
  std::thread thread_;
};

// True once a request waits in the model's queue; false after 30 seconds
// (the suite runs beside other tests on two cores).
bool wait_for_queued_request(httplib::Client& c) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (queue_depth(c) < 1) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST_F(ServeTest, ConcurrentRequestsAreBatched) {
  ServeProcess s = start({"--max-batch-delay-ms", "400", "--max-batch-size", "8"}, "batching");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  std::vector<std::string> bodies;
  for (const auto& f : images()) bodies.push_back(read_file(f));
  std::vector<int> status(bodies.size(), 0);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < bodies.size(); ++i) {
    clients.emplace_back([&, i] {
      auto c = s.client();
      auto r = c.Post("/predictions/cats", bodies[i], "image/png");
      status[i] = r ? r->status : -1;
    });
  }
  for (auto& t : clients) t.join();
  for (int st : status) EXPECT_EQ(st, 200);
  auto c = s.client();
  EXPECT_GE(batches_larger_than_one(c), 1u) << c.Get("/metrics")->body;
}

TEST_F(ServeTest, AFullQueueGets503WithRetryAfter) {
  ServeProcess s = start({"--queue", "1", "--max-batch-delay-ms", "6000", "--max-batch-size", "8"}, "queue");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const std::string image = read_file(images().front());
  BackgroundUpload first(s, image);
  auto c = s.client();
  ASSERT_TRUE(wait_for_queued_request(c)) << s.stderr_text();
  auto r = c.Post("/predictions/cats", image, "image/png");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_NE(body_json(r)["error"].get<std::string>().find("queue"), std::string::npos);
  EXPECT_EQ(first.status(), 200);
}

TEST_F(ServeTest, SigtermStopsReadinessAndFinishesRequestsInFlight) {
  ServeProcess s = start({"--max-batch-delay-ms", "5000", "--max-batch-size", "8"}, "drain");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const std::string image = read_file(images().front());
  BackgroundUpload in_flight(s, image);
  auto c = s.client();
  ASSERT_TRUE(wait_for_queued_request(c)) << s.stderr_text();
  kill(s.pid(), SIGTERM);
  // Once the server has said it drains it is not ready: it answers 503 while the
  // request in flight finishes, or, when that took no time, it has stopped listening.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.stderr_text().find("SIGTERM") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_NE(s.stderr_text().find("SIGTERM"), std::string::npos) << "no drain logged after SIGTERM";
  if (const auto ready = c.Get("/v2/health/ready")) EXPECT_EQ(ready->status, 503) << ready->body;
  if (const auto refused = c.Post("/predictions/cats", image, "image/png")) EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(in_flight.status(), 200);
  ASSERT_TRUE(s.wait_exit(std::chrono::seconds(30)));
  EXPECT_EQ(s.exit_status(), 0) << s.stderr_text();
  EXPECT_NE(s.stderr_text().find("SIGTERM"), std::string::npos);
}

// Several runs, each under its --name; SIGINT drains like SIGTERM.
TEST_F(ServeTest, SeveralRunsUnderTheirNamesAndSigintDrains) {
  ServeProcess s({run().string(), run().string(), "--name", "first", "--name", "second", "--threads", "1", "--device",
                  "cpu"},
                 *dir_ / "names.log");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  auto c = s.client();
  const std::string image = read_file(images().front());
  for (const char* name : {"first", "second"}) {
    EXPECT_EQ(c.Get(std::string("/v2/models/") + name + "/ready")->status, 200) << name;
    auto r = c.Post(std::string("/predictions/") + name, image, "image/png");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << name << ": " << r->body;
  }
  auto r = c.Post("/v2/models/cats/infer", "{}", "application/json");
  EXPECT_EQ(r->status, 404) << "the folder's name is not served under --name: " << r->body;
  // The latency histogram counted them.
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_NE(metrics.find("tabby_request_seconds_bucket{"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tabby_request_seconds_count{"), std::string::npos) << metrics;
  kill(s.pid(), SIGINT);
  ASSERT_TRUE(s.wait_exit(std::chrono::seconds(30)));
  EXPECT_EQ(s.exit_status(), 0) << s.stderr_text();
  EXPECT_NE(s.stderr_text().find("SIGINT"), std::string::npos) << s.stderr_text();
}

// Draining does not wait for batches to fill: a queued request runs at once.
TEST_F(ServeTest, DrainingRunsQueuedRequestsAtOnce) {
  ServeProcess s = start({"--max-batch-delay-ms", "20000", "--max-batch-size", "8"}, "drain_now");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const std::string image = read_file(images().front());
  BackgroundUpload queued(s, image);
  auto c = s.client();
  ASSERT_TRUE(wait_for_queued_request(c)) << s.stderr_text();
  const auto signalled = std::chrono::steady_clock::now();
  kill(s.pid(), SIGTERM);
  ASSERT_TRUE(s.wait_exit(std::chrono::seconds(15))) << s.stderr_text();
  EXPECT_EQ(queued.status(), 200);
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, std::chrono::seconds(10)) << "waited for the 20 s batch";
  EXPECT_EQ(s.exit_status(), 0) << s.stderr_text();
}

// A run whose weights are damaged: one error naming the problem, exit 1.
TEST_F(ServeTest, ADamagedRunStopsTheServerWithTheReason) {
  const fs::path damaged = *dir_ / "damaged";
  std::error_code ec;
  fs::remove_all(damaged, ec);
  fs::copy(run(), damaged, fs::copy_options::recursive);
  const std::string weights = read_file(damaged / "weights.safetensors");
  testing::write_bytes(damaged / "weights.safetensors", weights.substr(0, weights.size() / 2));
  ServeProcess s({damaged.string(), "--threads", "1", "--device", "cpu"}, *dir_ / "damaged.log");
  ASSERT_TRUE(s.wait_exit(std::chrono::seconds(60))) << s.stderr_text();
  EXPECT_EQ(s.exit_status(), 1) << s.stderr_text();
  EXPECT_NE(s.stderr_text().find("error: a model could not be loaded"), std::string::npos) << s.stderr_text();
  EXPECT_NE(s.stderr_text().find("weights.safetensors"), std::string::npos) << s.stderr_text();
}

// The upload page in Chromium, driven by chromedriver through Selenium: a real
// photo picked with the page's file input comes back labelled as
// /predictions labels it, with a thumbnail and one bar per class.
TEST_F(ServeTest, TheUploadPageLabelsAPhotoInARealBrowser) {
  // Only a machine where nothing can be installed (the GPU machine) opts out.
  const bool opted_out = std::getenv("TABBY_NO_BROWSER") && std::string(std::getenv("TABBY_NO_BROWSER")) == "1";
  if (!fs::exists("/usr/bin/chromium") || !fs::exists("/usr/bin/chromedriver")) {
    if (opted_out) GTEST_SKIP() << "chromium and chromium-driver are not installed (TABBY_NO_BROWSER=1)";
    FAIL() << "chromium and chromium-driver are not installed (scripts/install-deps.sh installs them)";
  }
  fs::path photo = images().front();
  if (auto shared = testing::shared_dir()) {
    const fs::path real = *shared / "datasets" / "cats_dogs_fullres" / "test_set" / "cats" / "cat.4001.jpg";
    if (fs::exists(real)) photo = real;
  }
  ServeProcess s = start({}, "browser");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const char* python = std::getenv("TABBY_PYTHON") ? std::getenv("TABBY_PYTHON") : "python3";
  const fs::path script = fs::path(std::getenv("TABBY_SOURCE_DIR")) / "tests" / "browser" / "upload_page.py";
  const auto r = testing::run_command(testing::shell_quote(python) + " " + testing::shell_quote(script.string()) + " " +
                                      testing::shell_quote("http://127.0.0.1:" + std::to_string(s.port()) + "/") + " " +
                                      testing::shell_quote(photo.string()) + " " +
                                      testing::shell_quote((*dir_ / "upload_page.png").string()));
  if (r.exit_code == 2 && opted_out) GTEST_SKIP() << "no browser to drive: " << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const json shown = json::parse(r.out);
  auto c = s.client();
  const json answer = body_json(c.Post("/predictions/cats", read_file(photo), "image/jpeg"));
  EXPECT_EQ(shown["label"], answer["label"]) << r.out;
  EXPECT_NEAR(std::stod(shown["probability"].get<std::string>()), answer["probability"].get<double>(), 1e-6);
  EXPECT_EQ(shown["bars"], 2);
  EXPECT_GT(shown["thumbnail"].get<int>(), 0);
  EXPECT_TRUE(shown["errors"].empty()) << r.out;
}

}  // namespace
}  // namespace tabby
