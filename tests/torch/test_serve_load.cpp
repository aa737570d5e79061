// A bounded load test of `tabby serve`: 20,000 requests from 16 keep-alive
// connections, with clients that abandon uploads half-way mixed in. No request
// may fail with a 5xx, the server must survive, and its resident memory must
// grow by less than 50 MB after the warm-up.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "serve_process.h"
#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/api/train_job.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::ServeProcess;

constexpr int kRequests = 20000;
constexpr int kWarmUp = 2000;
constexpr int kConnections = 16;

int64_t resident_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      int64_t kb = 0;
      in >> kb;
      return kb;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

// Sends the head of an upload and a little of its body, then hangs up.
void abandon_upload(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string head = "POST /predictions/load HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                             "Content-Length: 1000000\r\n\r\n" + std::string(3000, 'x');
    [[maybe_unused]] ssize_t n = send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  }
  close(fd);
}

fs::path trained_run(const fs::path& dir) {
  std::mt19937 rng(3);
  for (const char* cls : {"a", "b"}) {
    for (int i = 0; i < 8; ++i) {
      Image image(20, 20);
      for (auto& p : image.pixels) p = static_cast<uint8_t>(rng() % 256);
      testing::write_bytes(dir / "data" / cls / (std::to_string(i) + ".png"), encode_png(image));
    }
  }
  testing::write_bytes(dir / "model.toml", "name = \"load\"\n[[layers]]\ntype = \"Rescaling\"\nscale = 0.0039\n"
                                           "[[layers]]\ntype = \"Conv2D\"\nfilters = 4\nkernel_size = 3\n"
                                           "[[layers]]\ntype = \"GlobalAveragePooling2D\"\n[[layers]]\ntype = \"Dense\"\n");
  TrainJob job;
  job.model = (dir / "model.toml").string();
  job.data.data = (dir / "data").string();
  job.image_height = job.image_width = 16;
  job.train_overrides = {{"epochs", 1}};
  job.device = "cpu";
  job.threads = 1;
  job.out = dir / "load";
  run_train_job(job);
  return job.out;
}

TEST(ServeLoad, TwentyThousandRequestsWithoutA5xxOrAGrowingMemory) {
  const fs::path dir = testing::scratch_dir("serve_load");
  const fs::path run = trained_run(dir);
  std::string photo = encode_png(Image(320, 240));
  if (auto shared = testing::shared_dir()) {
    const fs::path real = *shared / "datasets" / "cats_dogs_fullres" / "test_set" / "dogs" / "dog.4001.jpg";
    if (fs::exists(real)) photo = read_file(real);
  }
  ServeProcess s({run.string(), "--threads", "1", "--device", "cpu"}, dir / "server.log");
  ASSERT_TRUE(s.wait_ready()) << s.stderr_text();

  std::atomic<int> next{0};
  std::mutex mutex;
  std::map<int, int> statuses;
  int64_t rss_after_warm_up = -1;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(10);  // a hang guard only
  int transport_errors = 0;  // the request never got an answer (retried once)
  auto client = [&](int id) {
    auto c = s.client();
    c.set_keep_alive(true);
    std::map<int, int> mine;
    int lost = 0;
    for (int i; (i = next.fetch_add(1)) < kRequests && std::chrono::steady_clock::now() < give_up;) {
      if (i % 400 == id) abandon_upload(s.port());
      auto r = c.Post("/predictions/load", photo, "image/jpeg");
      if (!r) {
        // A connection that broke under the load (on the client's side of two busy
        // cores): what any HTTP client does, once, on a fresh connection.
        ++lost;
        auto fresh = s.client();
        r = fresh.Post("/predictions/load", photo, "image/jpeg");
      }
      mine[r ? r->status : -1]++;
      if (i == kWarmUp) {
        std::lock_guard<std::mutex> lock(mutex);
        rss_after_warm_up = resident_kb(s.pid());
      }
    }
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& [st, n] : mine) statuses[st] += n;
    transport_errors += lost;
  };
  std::vector<std::thread> clients;
  for (int k = 0; k < kConnections; ++k) clients.emplace_back(client, k);
  for (auto& t : clients) t.join();
  const int64_t rss_at_end = resident_kb(s.pid());

  int answered = 0;
  for (const auto& [st, n] : statuses) answered += n;
  EXPECT_EQ(answered, kRequests) << "the hang guard stopped the test";
  EXPECT_EQ(statuses[200], kRequests) << "statuses: " << ::testing::PrintToString(statuses) << "\n" << s.stderr_text();
  EXPECT_LE(transport_errors, kRequests / 1000) << "connections broke " << transport_errors << " times";
  EXPECT_TRUE(s.alive());
  ASSERT_GT(rss_after_warm_up, 0);
  EXPECT_LT(rss_at_end - rss_after_warm_up, 50 * 1024)
      << "resident memory grew from " << rss_after_warm_up << " kB to " << rss_at_end << " kB";
  // The server is still ready and answers as before.
  auto c = s.client();
  EXPECT_EQ(c.Get("/v2/health/ready")->status, 200);
  std::cerr << "load: " << answered << " requests (" << transport_errors << " retried after a broken connection), "
            << "resident memory " << rss_after_warm_up / 1024 << " MB after warm-up, "
            << rss_at_end / 1024 << " MB at the end\n";
}

}  // namespace
}  // namespace tabby
