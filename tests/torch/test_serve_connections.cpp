// `tabby serve`'s HTTP connections under clients that misbehave: bodies cut
// short or stalled, broken Content-Lengths, oversized heads, more connections
// than --max-connections, and a flood of idle and slow clients beside real
// ones. Raw sockets where an HTTP client library would refuse to misbehave.
// Only what the clients get back is checked, never how long it took.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <regex>
#include <thread>

#include "serve_process.h"
#include "support/test_support.h"
#include "support/training_data.h"
#include "tabby/api/train_job.h"
#include "tabby/util/fs.h"

namespace tabby::connections_test {

// A client writing to a connection the server closed gets EPIPE, not a signal.
const bool kConnectionsSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

namespace fs = std::filesystem;
using testing::ServeProcess;

constexpr const char* kConnectionsModel = R"(name = "tiny-connections"
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

// A blocking TCP connection to 127.0.0.1, closed when destroyed.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // False when the server closed its end before all of it was taken.
  bool send_text(const std::string& text) {
    size_t sent = 0;
    while (sent < text.size()) {
      const ssize_t n = ::send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  void half_close() { shutdown(fd_, SHUT_WR); }
  // Everything the server sends until it closes the connection (or `limit`
  // passes: a generous bound, so a server that never closes fails the test
  // instead of hanging it). `closed` says which.
  std::string read_until_closed(bool* closed = nullptr, int limit_seconds = 60) {
    timeval wait{limit_seconds, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd_, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    if (closed) *closed = n == 0 || (n < 0 && errno == ECONNRESET);
    return out;
  }
  // One whole answer (head and Content-Length body) on a kept-alive connection.
  std::string read_answer() {
    timeval wait{60, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    std::string out;
    char buf[4096];
    for (;;) {
      const size_t head_end = out.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::smatch m;
        const std::string head = out.substr(0, head_end);
        const size_t length = std::regex_search(head, m, std::regex("Content-Length: ([0-9]+)", std::regex::icase))
                                  ? std::stoul(m[1])
                                  : 0;
        if (out.size() >= head_end + 4 + length) return out;
      }
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
};

bool starts_with_status(const std::string& answer, int status) {
  return answer.rfind("HTTP/1.1 " + std::to_string(status), 0) == 0;
}

// Resident memory of a process, in kB (/proc/PID/status); -1 when unreadable.
long resident_kb(pid_t pid) {
  std::string text;
  try {
    text = read_file("/proc/" + std::to_string(pid) + "/status");
  } catch (const std::exception&) {
    return -1;
  }
  std::smatch m;
  return std::regex_search(text, m, std::regex(R"(VmRSS:\s+([0-9]+) kB)")) ? std::stol(m[1]) : -1;
}

// Raises this process's open-file limit to `wanted` (at most the hard limit);
// false when the hard limit is below it.
bool allow_open_files(rlim_t wanted) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < wanted) return false;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < wanted) {
    lim.rlim_cur = wanted;
    return setrlimit(RLIMIT_NOFILE, &lim) == 0;
  }
  return true;
}

class ServeConnectionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(testing::scratch_dir("serve_connections_" + std::to_string(::getpid())));
    testing::write_two_class_folder(*dir_ / "train", 8, 20, 7);
    testing::write_bytes(*dir_ / "model.toml", kConnectionsModel);
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
  }
  static ServeProcess start(std::vector<std::string> flags, const std::string& name) {
    flags.insert(flags.begin(), (*dir_ / "cats").string());
    flags.insert(flags.end(), {"--threads", "1", "--device", "cpu"});
    return ServeProcess(flags, *dir_ / (name + ".log"));
  }
  static std::string image() { return read_file(*dir_ / "train" / "left" / "img_0.png"); }
  static fs::path* dir_;
};
fs::path* ServeConnectionsTest::dir_ = nullptr;

const std::string kUploadHead = "POST /predictions/cats HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n";

TEST_F(ServeConnectionsTest, ABodyShorterThanItsLengthThenEndOfInputIs400) {
  ServeProcess s = start({}, "short_body");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  RawConnection c(s.port());
  ASSERT_TRUE(c.send_text(kUploadHead + "Content-Length: 100\r\n\r\n" + std::string(10, 'x')));
  c.half_close();
  bool closed = false;
  const std::string answer = c.read_until_closed(&closed);
  EXPECT_TRUE(starts_with_status(answer, 400)) << answer;
  EXPECT_NE(answer.find("shorter than its Content-Length"), std::string::npos) << answer;
  EXPECT_TRUE(closed);
}

TEST_F(ServeConnectionsTest, ABodyThatStallsIs408AndTheConnectionCloses) {
  ServeProcess s = start({"--body-timeout", "1"}, "stalled_body");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  RawConnection c(s.port());
  ASSERT_TRUE(c.send_text(kUploadHead + "Content-Length: 100\r\n\r\n" + std::string(10, 'x')));
  bool closed = false;
  const std::string answer = c.read_until_closed(&closed);
  EXPECT_TRUE(starts_with_status(answer, 408)) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  EXPECT_TRUE(closed);
  // Counted under its route.
  auto metrics = s.client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find(R"(route="/predictions/{m}",model="cats",status="408")"), std::string::npos);
}

TEST_F(ServeConnectionsTest, BrokenContentLengthsAre400) {
  ServeProcess s = start({}, "content_length");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const std::vector<std::string> heads = {
      kUploadHead + "Content-Length: abc\r\n\r\n",
      kUploadHead + "Content-Length: -5\r\n\r\n",
      kUploadHead + "Content-Length: 5, 6\r\n\r\n",
      kUploadHead + "Content-Length: 99999999999999999999999\r\n\r\n",
      kUploadHead + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
      kUploadHead + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
      kUploadHead + "Transfer-Encoding: gzip\r\n\r\n",
  };
  for (const auto& head : heads) {
    RawConnection c(s.port());
    ASSERT_TRUE(c.send_text(head + "xxxxx"));
    bool closed = false;
    const std::string answer = c.read_until_closed(&closed);
    EXPECT_TRUE(starts_with_status(answer, 400)) << head << "\n->\n" << answer;
    EXPECT_NE(answer.find("{\"error\":"), std::string::npos) << answer;
    EXPECT_TRUE(closed) << head;
  }
}

TEST_F(ServeConnectionsTest, MalformedRequestLinesGetAClean4xx) {
  ServeProcess s = start({}, "request_line");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const std::vector<std::pair<std::string, int>> requests = {
      {"GET /\r\n\r\n", 400},                                          // HTTP/0.9
      {std::string("GET /v2\0x HTTP/1.1\r\nHost: x\r\n\r\n", 30), 400},  // a NUL in the path
      {"GET /v2%00x HTTP/1.1\r\nHost: x\r\n\r\n", 400},                // an escaped one
      {"GET /v2%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},                 // a broken escape
      {"GET /" + std::string(100000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
  };
  for (const auto& [request, status] : requests) {
    RawConnection c(s.port());
    c.send_text(request);  // the server may answer and close before a long request is all sent
    const std::string answer = c.read_until_closed();
    EXPECT_TRUE(starts_with_status(answer, status)) << request.substr(0, 40) << "\n->\n" << answer;
  }
  EXPECT_EQ(s.client().Get("/v2/health/ready")->status, 200);
}

TEST_F(ServeConnectionsTest, TooManyOrTooLargeHeadersAre431) {
  ServeProcess s = start({"--max-headers", "20", "--max-header-kb", "4"}, "headers");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  std::string many = "GET /v2 HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 25; ++i) many += "X-Field-" + std::to_string(i) + ": y\r\n";
  const std::vector<std::string> requests = {
      many + "\r\n",
      "GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n",
      "GET /v2 HTTP/1.1\r\nHost: x\r\nX-Huge: " + std::string(1 << 20, 'h') + "\r\n\r\n",
  };
  for (const auto& request : requests) {
    RawConnection c(s.port());
    c.send_text(request);
    bool closed = false;
    const std::string answer = c.read_until_closed(&closed);
    EXPECT_TRUE(starts_with_status(answer, 431)) << answer;
    EXPECT_TRUE(closed);
  }
  // Just under both limits is fine.
  std::string fine = "GET /v2 HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 18; ++i) fine += "X-Field-" + std::to_string(i) + ": y\r\n";
  RawConnection c(s.port());
  ASSERT_TRUE(c.send_text(fine + "\r\n"));
  EXPECT_TRUE(starts_with_status(c.read_answer(), 200));
}

TEST_F(ServeConnectionsTest, OverMaxConnectionsAClientGets503AndIsHungUpOn) {
  ServeProcess s = start({"--max-connections", "3"}, "max_connections");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  // wait_ready's clients have hung up: wait until the server has seen them go.
  std::vector<std::unique_ptr<RawConnection>> held;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (held.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    auto c = std::make_unique<RawConnection>(s.port());
    ASSERT_TRUE(c->ok());
    ASSERT_TRUE(c->send_text("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
    if (starts_with_status(c->read_answer(), 200)) {
      held.push_back(std::move(c));
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ASSERT_EQ(held.size(), 3u);
  RawConnection extra(s.port());
  ASSERT_TRUE(extra.ok());
  bool closed = false;
  const std::string answer = extra.read_until_closed(&closed);
  EXPECT_TRUE(starts_with_status(answer, 503)) << answer;
  EXPECT_NE(answer.find("--max-connections"), std::string::npos) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos) << answer;
  EXPECT_TRUE(closed);
  // The connections held still work, and one that ends makes room.
  ASSERT_TRUE(held[0]->send_text("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(starts_with_status(held[0]->read_answer(), 200));
  held.pop_back();
  // Raw sockets: after a 503 that closed the connection, retrying through
  // httplib 0.11 (Debian 12) left this test process crashing at exit.
  bool served = false;
  for (int attempt = 0; attempt < 600 && !served; ++attempt) {
    RawConnection c(s.port());
    served = c.send_text("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n") &&
             starts_with_status(c.read_answer(), 200);
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served);
}

TEST_F(ServeConnectionsTest, ExpectContinuePipeliningAndChunkedBodies) {
  ServeProcess s = start({"--max-body-mb", "0.01"}, "protocol");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const std::string body = image();
  ASSERT_LT(body.size(), 10000u);
  {
    // curl's large uploads: the head, then the body only once told to go on.
    RawConnection c(s.port());
    ASSERT_TRUE(c.send_text(kUploadHead + "Expect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n"));
    char buf[64] = {};
    timeval wait{60, 0};
    setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    const ssize_t n = recv(c.fd(), buf, 25, MSG_WAITALL);
    ASSERT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "HTTP/1.1 100 Continue\r\n\r\n");
    ASSERT_TRUE(c.send_text(body));
    EXPECT_TRUE(starts_with_status(c.read_answer(), 200));
  }
  {
    // Two requests in one write, answered in turn on the one connection; the
    // second a chunked upload.
    RawConnection c(s.port());
    char size[32];
    std::snprintf(size, sizeof size, "%zx", body.size());
    ASSERT_TRUE(c.send_text("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n" + kUploadHead +
                            "Transfer-Encoding: chunked\r\n\r\n" + size + "\r\n" + body + "\r\n0\r\n\r\n"));
    const std::string first = c.read_answer();
    EXPECT_TRUE(starts_with_status(first, 200)) << first;
    EXPECT_NE(first.find("\"ready\":true"), std::string::npos) << first;
    const std::string second = c.read_answer();
    EXPECT_TRUE(starts_with_status(second, 200)) << second;
    EXPECT_NE(second.find("\"label\""), std::string::npos) << second;
  }
  {
    // A chunked body is cut off as it passes --max-body-mb.
    RawConnection c(s.port());
    const std::string chunk(8000, 'z');
    c.send_text(kUploadHead + "Transfer-Encoding: chunked\r\n\r\n1f40\r\n" + chunk + "\r\n1f40\r\n" + chunk +
                "\r\n0\r\n\r\n");
    bool closed = false;
    const std::string answer = c.read_until_closed(&closed);
    EXPECT_TRUE(starts_with_status(answer, 413)) << answer;
    EXPECT_TRUE(closed);
  }
}

TEST_F(ServeConnectionsTest, AMultipartUploadIsLabelled) {
  ServeProcess s = start({}, "multipart");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  auto c = s.client();
  httplib::MultipartFormDataItems form = {{"note", "hello", "", ""}, {"file", image(), "a.png", "image/png"}};
  auto r = c.Post("/predictions/cats?top_k=1", form);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["top_k"].size(), 1u) << r->body;
  r = c.Post("/predictions/cats", "--b\r\nno end", "multipart/form-data; boundary=b");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

// 2,000 idle kept-alive connections and 500 clients sending their heads a
// line at a time, while 16 clients post predictions and a probe polls
// readiness: every probe is answered 200, no prediction gets a 5xx, the slow
// clients are hung up on (408, after --header-timeout) and the idle ones are
// kept, in little memory.
TEST_F(ServeConnectionsTest, AFloodOfIdleAndSlowClientsLeavesTheOthersServed) {
  constexpr int kIdle = 2000, kSlow = 500, kPredictors = 16, kPredictionsEach = 10;
  if (!allow_open_files(kIdle + kSlow + 500)) {
    GTEST_SKIP() << "the hard limit on open files (ulimit -Hn) is below " << kIdle + kSlow + 500
                 << ", the connections this test opens";
  }
  ServeProcess s = start({"--header-timeout", "2", "--idle-timeout", "600"}, "flood");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();
  const long rss_before = resident_kb(s.pid());

  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.push_back(std::make_unique<RawConnection>(s.port()));
    ASSERT_TRUE(idle.back()->ok()) << "connection " << i;
    ASSERT_TRUE(idle.back()->send_text("GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(starts_with_status(idle.back()->read_answer(), 200)) << "connection " << i;
  }

  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<RawConnection>(s.port()));
    ASSERT_TRUE(slow.back()->ok());
  }
  std::atomic<bool> flooding{true};
  std::atomic<int> probes{0}, probes_not_200{0}, predictions{0}, predictions_failed{0};
  std::vector<std::string> failures;
  std::mutex failures_mutex;

  std::thread prober([&] {
    while (flooding) {
      auto r = s.client().Get("/v2/health/ready");
      ++probes;
      if (!r || r->status != 200) ++probes_not_200;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  std::vector<std::thread> predictors;
  const std::string upload = image();
  for (int p = 0; p < kPredictors; ++p) {
    predictors.emplace_back([&] {
      auto c = s.client();
      for (int k = 0; k < kPredictionsEach; ++k) {
        auto r = c.Post("/predictions/cats", upload, "image/png");
        ++predictions;
        if (!r || r->status >= 500) {
          ++predictions_failed;
          std::lock_guard<std::mutex> lock(failures_mutex);
          failures.push_back(r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error()));
        }
      }
    });
  }

  // The slow clients: a header line each every 300 ms until the server
  // answers or hangs up; a generous bound in case it never does.
  std::vector<bool> ended(kSlow, false);
  std::vector<std::string> heard(kSlow);
  int ended_count = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto next_line = std::chrono::steady_clock::now();
  for (int line = 0; ended_count < kSlow && std::chrono::steady_clock::now() < give_up;) {
    if (std::chrono::steady_clock::now() >= next_line) {
      const std::string text = line == 0 ? "GET /v2/health/ready HTTP/1.1\r\n" : "X-Slow-" + std::to_string(line) + ": y\r\n";
      for (int i = 0; i < kSlow; ++i) {
        if (!ended[i] && heard[i].empty()) slow[i]->send_text(text);
      }
      ++line;
      next_line += std::chrono::milliseconds(300);
    }
    std::vector<pollfd> fds;
    std::vector<int> which;
    for (int i = 0; i < kSlow; ++i) {
      if (!ended[i]) {
        fds.push_back({slow[i]->fd(), POLLIN, 0});
        which.push_back(i);
      }
    }
    if (poll(fds.data(), fds.size(), 50) <= 0) continue;
    for (size_t f = 0; f < fds.size(); ++f) {
      if (!(fds[f].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t n = recv(fds[f].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        heard[which[f]].append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EAGAIN) {
        ended[which[f]] = true;
        ++ended_count;
      }
    }
  }
  for (auto& t : predictors) t.join();
  const long rss_during = resident_kb(s.pid());
  flooding = false;
  prober.join();

  EXPECT_EQ(ended_count, kSlow) << "slow clients the server did not hang up on";
  int answered_408 = 0;
  for (const auto& h : heard) answered_408 += starts_with_status(h, 408);
  EXPECT_EQ(answered_408, kSlow);
  EXPECT_GT(probes.load(), 0);
  EXPECT_EQ(probes_not_200.load(), 0);
  EXPECT_EQ(predictions.load(), kPredictors * kPredictionsEach);
  EXPECT_EQ(predictions_failed.load(), 0) << (failures.empty() ? "" : failures.front());
  // The idle connections are still open and still served.
  for (int i = 0; i < kIdle; i += 97) {
    ASSERT_TRUE(idle[i]->send_text("GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")) << i;
    EXPECT_TRUE(starts_with_status(idle[i]->read_answer(), 200)) << i;
  }
  ASSERT_GT(rss_before, 0);
  ASSERT_GT(rss_during, 0);
  EXPECT_LT(rss_during - rss_before, 100 * 1024) << "kB of resident memory the flood cost the server";
}

}  // namespace tabby::connections_test
