// The benchmark's load generator, one for every server and protocol: a closed
// loop of N clients, each on a connection of its own, each sending its next
// request as soon as its last one was answered. The requests answered inside
// the measured window (after the warm-up, the clients never pausing between
// the two) give the rate; each one's own latency gives the percentiles.
// Prints one JSON line.
//
//   serve_load http --url http://127.0.0.1:8080/predictions/pets
//     --header 'Content-Type: image/jpeg' --body a.jpg --body b.jpg ...
//   serve_load grpc --target 127.0.0.1:8081 --model pets --shape 1,3,224,224 --raw pixels.f32
//   common: --connections 16 --warmup 5 --duration 20; --once: one request,
//   its outcome as the exit status (the check before a load).
//
// HTTP/1.1 keep-alive over blocking sockets (bodies sent in turn, answers read
// by Content-Length or chunks); gRPC: the Open Inference Protocol's ModelInfer
// with the tensor in raw_input_contents, one channel per client. Every request
// is built once, so the client's own work per call is the transport's: the
// caller reads its CPU time to report the ceiling.
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "inference.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct LoadArgs {
  std::string protocol;
  // http
  std::string url;
  std::vector<std::string> headers, bodies;
  // grpc
  std::string target, model, input = "images", datatype = "FP32", raw, output = "probabilities";
  std::vector<int64_t> shape;
  // both
  int connections = 16;
  double warmup = 5, duration = 20;
  bool once = false;
};

// What one request came to: ok, or why not.
struct Outcome {
  bool ok = false;
  std::string error;
};
using Call = std::function<Outcome()>;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) dims.push_back(std::stoll(item));
  return dims;
}

LoadArgs parse_args(int argc, char** argv) {
  LoadArgs a;
  if (argc < 2) throw std::runtime_error("usage: serve_load http|grpc OPTIONS");
  a.protocol = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "--once") {
      a.once = true;
      continue;
    }
    if (i + 1 >= argc) throw std::runtime_error(key + " needs a value");
    const std::string value = argv[++i];
    if (key == "--url") a.url = value;
    else if (key == "--header") a.headers.push_back(value);
    else if (key == "--body") a.bodies.push_back(read_file(value));
    else if (key == "--target") a.target = value;
    else if (key == "--model") a.model = value;
    else if (key == "--input") a.input = value;
    else if (key == "--datatype") a.datatype = value;
    else if (key == "--shape") a.shape = parse_shape(value);
    else if (key == "--raw") a.raw = read_file(value);
    else if (key == "--output") a.output = value;
    else if (key == "--connections") a.connections = std::stoi(value);
    else if (key == "--warmup") a.warmup = std::stod(value);
    else if (key == "--duration") a.duration = std::stod(value);
    else throw std::runtime_error("unknown option " + key);
  }
  if (a.protocol == "http" && (a.url.empty() || a.bodies.empty()))
    throw std::runtime_error("http needs --url and at least one --body");
  if (a.protocol == "grpc" && (a.target.empty() || a.model.empty() || a.raw.empty() || a.shape.empty()))
    throw std::runtime_error("grpc needs --target, --model, --shape and --raw");
  if (a.protocol != "http" && a.protocol != "grpc") throw std::runtime_error("protocol http or grpc");
  return a;
}

// ---------------------------------------------------------------- HTTP/1.1

struct Url {
  std::string host, port, path;
};

Url parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) throw std::runtime_error("only http:// URLs: " + url);
  const auto slash = url.find('/', scheme.size());
  const std::string authority = url.substr(scheme.size(), slash - scheme.size());
  const auto colon = authority.rfind(':');
  Url u;
  u.host = authority.substr(0, colon);
  u.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  u.path = slash == std::string::npos ? "/" : url.substr(slash);
  return u;
}

// One keep-alive connection; reconnects after the server closed it.
class HttpConnection {
 public:
  explicit HttpConnection(Url url) : url_(std::move(url)) {}
  ~HttpConnection() { close_socket(); }

  Outcome post(const std::string& request) {
    if (fd_ < 0 && !open_socket()) return {false, "cannot connect to " + url_.host + ":" + url_.port};
    bool sent_all = true;
    for (size_t sent = 0; sent < request.size();) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        sent_all = false;  // a server refusing a request may answer before it read the body
        break;
      }
      sent += static_cast<size_t>(n);
    }
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return fail(sent_all ? "the connection closed before an answer" : "the connection closed while sending");
    const std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    const int status = head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
    bool body_ok;
    if (lower.find("transfer-encoding: chunked") != std::string::npos) {
      body_ok = skip_chunks();
    } else {
      const auto at = lower.find("content-length:");
      body_ok = at == std::string::npos || skip_bytes(std::strtoull(lower.c_str() + at + 15, nullptr, 10));
    }
    if (!body_ok) return fail("the connection closed inside an answer");
    if (!sent_all || lower.find("connection: close") != std::string::npos) close_socket();
    if (status != 200) return {false, "HTTP " + std::to_string(status)};
    return {true, ""};
  }

 private:
  bool open_socket() {
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(url_.host.c_str(), url_.port.c_str(), &hints, &found) != 0) return false;
    for (addrinfo* p = found; p; p = p->ai_next) {
      fd_ = ::socket(p->ai_family, p->ai_socktype, p->ai_protocol);
      if (fd_ >= 0 && ::connect(fd_, p->ai_addr, p->ai_addrlen) == 0) break;
      close_socket();
    }
    freeaddrinfo(found);
    if (fd_ < 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
  }
  void close_socket() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  }
  Outcome fail(const std::string& why) {
    close_socket();
    return {false, why};
  }
  bool fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  bool skip_bytes(size_t n) {
    while (buffer_.size() < n)
      if (!fill()) return false;
    buffer_.erase(0, n);
    return true;
  }
  bool read_line(std::string& line) {
    size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos)
      if (!fill()) return false;
    line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return true;
  }
  bool skip_chunks() {
    for (std::string line;;) {
      if (!read_line(line)) return false;
      const size_t size = std::strtoull(line.c_str(), nullptr, 16);
      if (size == 0) {
        do {  // trailers, up to the empty line
          if (!read_line(line)) return false;
        } while (!line.empty());
        return true;
      }
      if (!skip_bytes(size + 2)) return false;
    }
  }

  Url url_;
  int fd_ = -1;
  std::string buffer_;
};

std::vector<std::string> http_requests(const LoadArgs& a, const Url& url) {
  std::vector<std::string> requests;
  for (const auto& body : a.bodies) {
    std::string r = "POST " + url.path + " HTTP/1.1\r\nHost: " + url.host + ":" + url.port + "\r\n";
    for (const auto& h : a.headers) r += h + "\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    requests.push_back(std::move(r));
  }
  return requests;
}

// ---------------------------------------------------------------- gRPC

std::shared_ptr<grpc::Channel> open_channel(const std::string& target, int index) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Without a pool of its own per channel, gRPC shares one connection between
  // all channels to the same target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("tabby.bench.client", index);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

inference::ModelInferRequest infer_request(const LoadArgs& a) {
  inference::ModelInferRequest request;
  request.set_model_name(a.model);
  auto* input = request.add_inputs();
  input->set_name(a.input);
  input->set_datatype(a.datatype);
  for (int64_t d : a.shape) input->add_shape(d);
  request.add_outputs()->set_name(a.output);
  request.add_raw_input_contents(a.raw);
  return request;
}

// ---------------------------------------------------------------- the loop

// Each client's call, made on its own connection.
std::function<Call(int)> client_factory(const LoadArgs& a) {
  if (a.protocol == "http") {
    const Url url = parse_url(a.url);
    auto requests = std::make_shared<std::vector<std::string>>(http_requests(a, url));
    return [url, requests](int index) -> Call {
      auto connection = std::make_shared<HttpConnection>(url);
      auto next = std::make_shared<size_t>(static_cast<size_t>(index) % requests->size());
      return [connection, requests, next] {
        const std::string& r = (*requests)[*next];
        *next = (*next + 1) % requests->size();
        return connection->post(r);
      };
    };
  }
  auto request = std::make_shared<inference::ModelInferRequest>(infer_request(a));
  const std::string target = a.target;
  return [request, target](int index) -> Call {
    std::shared_ptr<inference::GRPCInferenceService::Stub> stub =
        inference::GRPCInferenceService::NewStub(open_channel(target, index));
    return [stub, request] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      inference::ModelInferResponse response;
      const grpc::Status status = stub->ModelInfer(&context, *request, &response);
      if (!status.ok()) return Outcome{false, status.error_message()};
      if (response.raw_output_contents_size() + response.outputs_size() == 0)
        return Outcome{false, "an answer without outputs"};
      return Outcome{true, ""};
    };
  };
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p / 100.0 * sorted.size()))];
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

int run_load(const LoadArgs& a) {
  const auto factory = client_factory(a);
  if (a.once) {
    const Outcome o = factory(0)();
    if (!o.ok) std::cerr << "serve_load: " << o.error << "\n";
    return o.ok ? 0 : 1;
  }
  const auto seconds = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  const auto window_start = Clock::now() + seconds(a.warmup);
  const auto window_end = window_start + seconds(a.duration);
  std::mutex mutex;
  std::vector<double> latencies_ms;
  long errors = 0;
  std::string first_error;
  std::vector<std::thread> clients;
  for (int c = 0; c < a.connections; ++c) {
    clients.emplace_back([&, c] {
      Call call = factory(c);
      std::vector<double> mine;
      long my_errors = 0;
      std::string my_error;
      while (Clock::now() < window_end) {
        const auto sent = Clock::now();
        const Outcome o = call();
        const auto answered = Clock::now();
        if (answered < window_start || answered > window_end) continue;
        if (o.ok) {
          mine.push_back(std::chrono::duration<double, std::milli>(answered - sent).count());
        } else {
          ++my_errors;
          if (my_error.empty()) my_error = o.error;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));  // no busy loop on a refusing server
        }
      }
      std::lock_guard<std::mutex> lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      errors += my_errors;
      if (first_error.empty()) first_error = my_error;
    });
  }
  for (auto& t : clients) t.join();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  std::printf(
      "{\"requests\": %zu, \"seconds\": %.3f, \"rps\": %.3f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
      "\"max_ms\": %.3f, \"errors\": %ld, \"first_error\": \"%s\"}\n",
      latencies_ms.size(), a.duration, latencies_ms.size() / a.duration, percentile(latencies_ms, 50),
      percentile(latencies_ms, 90), percentile(latencies_ms, 99), latencies_ms.empty() ? 0.0 : latencies_ms.back(),
      errors, json_escape(first_error).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_load(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "serve_load: " << e.what() << "\n";
    return 2;
  }
}
