// The HTTP/1.1 front end on Boost.Beast and Asio. A few I/O threads run every
// connection, so an open connection costs memory, never a thread: idle and
// slow clients cannot starve the others. GET routes are answered on the I/O
// thread at once; inference requests block on a model's batcher, so they run
// on a worker pool and post their reply back to their connection, and
// readiness never waits behind inference.
#include "tabby/server/http_front_end.h"

#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "tabby/serve/multipart.h"
#include "tabby/server/http_routes.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace tabby::server {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr const char* kBodyTooLarge = "the body is larger than this server takes (--max-body-mb)";
// What an idle connection reads into while it waits for its next request.
constexpr size_t kFirstReadBytes = 1024;
// After an answer that ends a connection, what the client still sends is read
// and dropped for a while: closing with unread data resets the connection,
// and the reset can destroy the answer before the client has read it.
// A client that has stopped sending is hung up on sooner.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kLingerQuiet = std::chrono::milliseconds(300);
constexpr size_t kLingerBytes = 1 << 20;
// Files the process needs besides its connections (models, logs, the listener).
constexpr rlim_t kSpareFiles = 64;
// How long stop() lets answers already computed reach their clients.
constexpr auto kStopWriteGrace = std::chrono::seconds(5);

// Capped at ten years: a deadline past it would overflow the clock.
Clock::duration seconds_of(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(s, 3e8)));
}

// What the listener and every connection share; lives as long as the front end.
struct HttpServerState {
  InferenceService& service;
  ConnectionLimits limits;
  size_t body_limit;
  Clock::duration write_timeout;
  asio::thread_pool& workers;
  std::atomic<int> open{0};      // connections counted against --max-connections
  std::atomic<int> answering{0};  // requests read whose answer is not yet written
  std::atomic<bool> stopping{false};
};

// %XX decoded (and '+' as a space in a query); nullopt for a broken escape or a NUL.
std::optional<std::string> url_decoded(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

// The value of `name` in a query string (decoded); nullopt when absent or broken.
std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    const size_t eq = item.find('=');
    if (url_decoded(item.substr(0, eq), true) == std::string(name)) {
      return eq == std::string_view::npos ? std::string() : url_decoded(item.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

// An inference request, taken off its connection to run on a worker.
struct InferenceCall {
  bool oip = false;  // POST /v2/models/{m}/infer, else /predictions/{m}
  std::string model, body, content_type;
  std::optional<std::string> inference_header_length, top_k, threshold;
};

HttpReply run_inference(InferenceService& service, const InferenceCall& call) {
  try {
    if (call.oip) return oip_infer(service, call.model, call.body, call.inference_header_length);
    if (const auto boundary = serve::form_boundary(call.content_type)) {
      return predictions(service, call.model, serve::form_upload(call.body, *boundary), call.top_k, call.threshold);
    }
    return predictions(service, call.model, call.body, call.top_k, call.threshold);
  } catch (const serve::RequestError& e) {
    return error_reply(e);
  } catch (const std::exception& e) {
    return json_reply(500, serve::error_body(e.what()));
  }
}

HttpReply refusal(int status, const std::string& message) { return error_reply(serve::RequestError(status, message)); }

// One client connection: reads requests one after another (kept alive), each
// under its deadline, and writes their answers. Every handler runs on the
// connection's strand; a timer that expires cancels the pending read, and the
// read's handler answers 408 (Beast's own stream timeouts close the socket,
// which leaves no way to say why).
class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, HttpServerState& state, bool counted)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), state_(state), counted_(counted) {
    if (counted_) ++state_.open;
  }
  ~HttpConnection() {
    if (counted_) --state_.open;
    if (answering_) --state_.answering;
  }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  void start() { wait_for_request(); }
  // Answers before reading anything, then hangs up (over --max-connections).
  void refuse(HttpReply reply) { answer(std::move(reply), true); }

 private:
  void arm_until(Clock::time_point deadline) {
    timed_out_ = false;
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this(), generation = ++timer_generation_](beast::error_code ec) {
      if (ec || generation != self->timer_generation_) return;
      self->timed_out_ = true;
      beast::error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void arm(Clock::duration d) { arm_until(Clock::now() + d); }
  void disarm() {
    ++timer_generation_;
    timer_.cancel();
  }

  void wait_for_request() {
    path_.clear();
    if (buffer_.size() > 0) return read_head();  // pipelined: the next request is here already
    // A connection kept for its next request holds no more than this buffer.
    buffer_.shrink_to_fit();
    arm(seconds_of(state_.limits.idle_timeout_seconds));
    socket_.async_read_some(buffer_.prepare(kFirstReadBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->buffer_.commit(n);
                              // Silence, a hang-up or the idle timeout: nothing to answer.
                              if (ec) return self->close_now();
                              self->read_head();
                            });
  }

  // The head's clock starts at its first byte: an idle keep-alive wait is not
  // a slow request.
  void read_head() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<size_t>(state_.limits.max_header_bytes, UINT32_MAX)));
    // Checked from the head in on_head (to refuse it unread), then set.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    arm(seconds_of(state_.limits.header_timeout_seconds));
    http::async_read_header(socket_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->on_head(ec); });
  }

  void on_head(beast::error_code ec) {
    if (ec) return read_failed(ec, false);
    started_ = Clock::now();
    const auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    const size_t question = target.find('?');
    const auto path = url_decoded(target.substr(0, question), false);
    if (!path || path->empty() || path->front() != '/') {
      return answer(refusal(400, "the request's path is not a valid absolute path"), true);
    }
    path_ = *path;
    query_ = question == std::string_view::npos ? std::string() : std::string(target.substr(question + 1));
    if (std::distance(req.begin(), req.end()) > state_.limits.max_header_count) {
      return answer(refusal(431, fmt::format("the request has more than {} header fields", state_.limits.max_header_count)),
                    true);
    }
    if (req.count(http::field::transfer_encoding) && !parser_->chunked()) {
      return answer(refusal(400, "the only Transfer-Encoding this server reads is chunked"), true);
    }
    // Refused from the head, before any of the body is read: the client
    // learns at once, and is told to hang up.
    if (parser_->content_length() && *parser_->content_length() > state_.body_limit) {
      return answer(refusal(413, kBodyTooLarge), true);
    }
    parser_->body_limit(state_.body_limit);  // a chunked body's limit
    if (parser_->is_done()) return dispatch();
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      arm(state_.write_timeout);
      return asio::async_write(socket_, asio::buffer(kContinue),
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (ec) return self->close_now();
                                 self->start_body();
                               });
    }
    start_body();
  }

  // A body gets --body-timeout for each stall, and in all that time plus its
  // length at --min-body-rate-kb.
  void start_body() {
    const auto& l = state_.limits;
    const double bytes = static_cast<double>(parser_->content_length().value_or(state_.body_limit));
    body_deadline_ = l.min_body_bytes_per_second > 0
                         ? Clock::now() + seconds_of(l.body_timeout_seconds + bytes / l.min_body_bytes_per_second)
                         : Clock::time_point::max();
    read_body();
  }

  void read_body() {
    arm_until(std::min(Clock::now() + seconds_of(state_.limits.body_timeout_seconds), body_deadline_));
    http::async_read_some(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->read_failed(ec, true);
      if (self->parser_->is_done()) return self->dispatch();
      self->read_body();
    });
  }

  void read_failed(beast::error_code ec, bool in_body) {
    if (ec == asio::error::operation_aborted && timed_out_) {
      return answer(refusal(408, in_body ? "the body stopped arriving (--body-timeout, --min-body-rate-kb)"
                                         : "the request's head did not arrive in time (--header-timeout)"),
                    true);
    }
    if (ec == http::error::header_limit) {
      return answer(refusal(431, "the request line and headers are larger than this server takes (--max-header-kb)"),
                    true);
    }
    if (ec == http::error::body_limit) return answer(refusal(413, kBodyTooLarge), true);
    if (ec == http::error::partial_message && in_body) {
      return answer(refusal(400, "the request ended before its body did (shorter than its Content-Length)"), true);
    }
    if (ec == http::error::bad_content_length) {
      return answer(refusal(400, "the Content-Length is not a number of bytes, or comes with Transfer-Encoding"), true);
    }
    if (ec == http::error::bad_transfer_encoding) {
      return answer(refusal(400, "the Transfer-Encoding is repeated or comes with a Content-Length"), true);
    }
    if (ec != http::error::end_of_stream && ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return answer(refusal(400, "malformed HTTP/1.1 request: " + ec.message()), true);
    }
    close_now();  // a hang-up or a reset: no one to answer
  }

  void dispatch() {
    disarm();
    auto& req = parser_->get();
    const bool close = !req.keep_alive();
    const std::string route = route_of(path_);
    if (req.method() == http::verb::get) {
      std::optional<HttpReply> reply;
      try {
        reply = get_route(state_.service, path_);
      } catch (const std::exception& e) {
        reply = json_reply(500, serve::error_body(e.what()));
      }
      if (reply) return answer(std::move(*reply), close);
    } else if (req.method() == http::verb::post && (route == "/predictions/{m}" || route == "/v2/models/{m}/infer")) {
      InferenceCall call;
      call.oip = route == "/v2/models/{m}/infer";
      call.model = model_of(path_);
      call.body = beast::buffers_to_string(req.body().data());
      call.content_type = std::string(req[http::field::content_type]);
      if (req.count("Inference-Header-Content-Length")) {
        call.inference_header_length = std::string(req["Inference-Header-Content-Length"]);
      }
      call.top_k = query_value(query_, "top_k");
      call.threshold = query_value(query_, "threshold");
      parser_.reset();  // the body now lives in the call
      ++state_.answering;
      answering_ = true;
      asio::post(state_.workers, [self = shared_from_this(), call = std::move(call), close] {
        HttpReply reply = run_inference(self->state_.service, call);
        asio::post(self->socket_.get_executor(),
                   [self, reply = std::move(reply), close]() mutable { self->answer(std::move(reply), close); });
      });
      return;
    }
    if (route != "other") {
      const bool post_route = route == "/predictions/{m}" || route == "/v2/models/{m}/infer";
      HttpReply reply = refusal(405, fmt::format("{} takes {} requests", route, post_route ? "POST" : "GET"));
      reply.headers.emplace_back("Allow", post_route ? "POST" : "GET");
      return answer(std::move(reply), close);
    }
    const std::string method(req.method_string().data(), req.method_string().size());
    answer(refusal(404, "no route " + method + " " + path_ + " (see GET /v2)"), close);
  }

  void answer(HttpReply reply, bool close) {
    close = close || state_.stopping.load();
    if (!path_.empty()) {
      const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
      state_.service.record_request(route_of(path_), model_of(path_), reply.status, seconds);
    }
    response_.emplace(static_cast<http::status>(reply.status), 11);
    response_->set(http::field::content_type, reply.content_type);
    for (const auto& [k, v] : reply.headers) response_->set(k, v);
    response_->keep_alive(!close);
    response_->body() = std::move(reply.body);
    response_->prepare_payload();
    arm(state_.write_timeout);
    http::async_write(socket_, *response_, [self = shared_from_this(), close](beast::error_code ec, size_t) {
      self->response_.reset();
      if (self->answering_) --self->state_.answering;
      self->answering_ = false;
      if (ec) return self->close_now();
      if (close) return self->linger_then_close();
      self->parser_.reset();
      self->wait_for_request();
    });
  }

  void linger_then_close() {
    beast::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.clear();
    linger_deadline_ = Clock::now() + kLingerTime;
    drop_until_eof();
  }
  void drop_until_eof() {
    arm_until(std::min(Clock::now() + kLingerQuiet, linger_deadline_));
    socket_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > kLingerBytes) return self->close_now();
      self->drop_until_eof();
    });
  }

  void close_now() {
    disarm();
    beast::error_code ignored;
    socket_.close(ignored);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  HttpServerState& state_;
  const bool counted_;
  beast::flat_buffer buffer_;
  // dynamic_body, not string_body: a string reserves the whole Content-Length
  // from the head, memory a client could claim without sending any of it.
  std::optional<http::request_parser<http::dynamic_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::uint64_t timer_generation_ = 0;
  bool timed_out_ = false;
  Clock::time_point started_, body_deadline_, linger_deadline_;
  std::string path_, query_;  // of the request being answered; path_ "" before its head is read
  size_t lingered_ = 0;
  bool answering_ = false;  // counted in state_.answering, from inference to the answer written
};

// Connections beyond what the process may open fail to accept (EMFILE): so
// the soft limit is raised to the hard one.
void raise_open_file_limit(int max_connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(max_connections) + kSpareFiles > lim.rlim_cur) {
    log::warn(fmt::format("--max-connections {} is over what this process may open ({} files): connections beyond "
                          "about {} wait in the listen queue",
                          max_connections, lim.rlim_cur, lim.rlim_cur - std::min(lim.rlim_cur, kSpareFiles)),
              "raise the hard limit (ulimit -Hn, LimitNOFILE= in a systemd unit) or lower --max-connections");
  }
}

// One I/O thread serves thousands of connections; a second helps on larger machines.
int io_thread_count() { return std::thread::hardware_concurrency() >= 8 ? 2 : 1; }

int worker_count(InferenceService& service) {
  const auto& o = service.options();
  const int64_t batch_total = static_cast<int64_t>(service.models().size()) * o.model.batching.max_batch_size;
  return o.http_threads > 0 ? o.http_threads : static_cast<int>(std::max<int64_t>(16, 2 * batch_total));
}

class BeastFrontEnd : public FrontEnd {
 public:
  explicit BeastFrontEnd(InferenceService& service)
      : workers_(static_cast<size_t>(worker_count(service))),
        state_{service,
               service.options().limits,
               service.body_limit(),
               seconds_of(std::max(1, service.options().read_timeout_seconds)),
               workers_},
        acceptor_(asio::make_strand(ioc_)),
        retry_(acceptor_.get_executor()) {}
  ~BeastFrontEnd() override {
    // Workers first: a request still running posts its answer to ioc_.
    workers_.join();
  }

  int bind() override;
  void serve() override;
  void stop() override;
  std::string scheme() const override { return "http"; }

 private:
  void accept();

  // Declared in the order they may be destroyed last to first: the I/O
  // context's handlers own the connections, which use the state.
  asio::thread_pool workers_;
  HttpServerState state_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
};

int BeastFrontEnd::bind() {
  const auto& o = state_.service.options();
  raise_open_file_limit(state_.limits.max_connections);
  beast::error_code ec;
  tcp::endpoint endpoint;
  const auto address = asio::ip::make_address(o.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, static_cast<unsigned short>(o.port));
  } else {
    tcp::resolver resolver(ioc_);
    const auto found = resolver.resolve(o.host, std::to_string(o.port), ec);
    if (ec || found.empty()) throw Error(fmt::format("cannot listen on {}: {}", o.host, ec.message()));
    endpoint = found.begin()->endpoint();
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (o.port == 0) throw Error(fmt::format("cannot listen on {} ({})", o.host, ec.message()));
    throw Error(fmt::format("cannot listen on {}:{} ({})", o.host, o.port, ec.message()),
                "another program may use the port: choose another with --port, or --port 0 for any free one");
  }
  return acceptor_.local_endpoint().port();
}

void BeastFrontEnd::accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open() || state_.stopping) return;
    if (ec) {
      // Out of files (EMFILE) or memory: try again in a moment rather than spin.
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    beast::error_code ignored;
    // An answer goes out as head and body: with Nagle's algorithm the body
    // would wait for the client's delayed ACK of the head, up to 40 ms.
    socket.set_option(tcp::no_delay(true), ignored);
    const int max = state_.limits.max_connections;
    const bool over = state_.open.load() >= max;
    auto connection = std::make_shared<HttpConnection>(std::move(socket), state_, !over);
    if (over) {
      connection->refuse(refusal(503, fmt::format("the server has its most connections open ({}, --max-connections): "
                                                  "try again later",
                                                  max)));
    } else {
      connection->start();
    }
    accept();
  });
}

void BeastFrontEnd::serve() {
  asio::post(acceptor_.get_executor(), [this] { accept(); });
  std::vector<std::thread> more;
  for (int k = 1; k < io_thread_count(); ++k) more.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : more) t.join();
}

void BeastFrontEnd::stop() {
  if (state_.stopping.exchange(true)) return;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
  });
  // run_server drains first: the inference in flight has finished, but its
  // answers may still be on their way to the I/O threads.
  const auto deadline = Clock::now() + kStopWriteGrace;
  while (state_.answering.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ioc_.stop();
}

}  // namespace

std::unique_ptr<FrontEnd> make_http_front_end(InferenceService& service) {
  return std::make_unique<BeastFrontEnd>(service);
}

}  // namespace tabby::server
