// The HTTP front end on cpp-httplib (a thread per connection).
#include "tabby/server/http_front_end.h"

#include <httplib.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tabby/server/http_routes.h"
#include "tabby/util/error.h"

namespace tabby::server {

namespace {

constexpr const char* kBodyTooLarge = "the body is larger than this server takes (--max-body-mb)";

using Clock = std::chrono::steady_clock;

thread_local Clock::time_point t_request_start;

void send(httplib::Response& res, const HttpReply& reply) {
  res.status = reply.status;
  for (const auto& [k, v] : reply.headers) res.set_header(k, v);
  res.set_content(reply.body, reply.content_type);
}

std::optional<std::string> header_of(const httplib::Request& req, const char* name) {
  if (!req.has_header(name)) return std::nullopt;
  return req.get_header_value(name);
}

std::optional<std::string> param_of(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

// Bodies are read through a content reader, not by httplib itself: httplib
// refuses url-encoded bodies over 8 KB (its form-parsing limit), and
// `curl --data-binary @photo.jpg` sends exactly that content type. The body
// limit still applies (httplib answers 413 from the Content-Length).
[[noreturn]] void body_unread() {
  // httplib stops reading a body over the limit (the one way reading fails while
  // the client still listens), so that is what the client is told.
  throw serve::RequestError(413, kBodyTooLarge);
}

// `limit` again here: httplib checks a Content-Length, not a chunked body.
std::string read_body(const httplib::ContentReader& reader, size_t limit) {
  std::string body;
  const bool read = reader([&](const char* data, size_t n) {
    if (body.size() + n > limit) return false;
    body.append(data, n);
    return true;
  });
  if (!read) body_unread();
  return body;
}

// The image of a /predictions request: the body, or the first file of a multipart form.
std::string upload_of(const httplib::Request& req, const httplib::ContentReader& reader, size_t limit) {
  if (!req.is_multipart_form_data()) return read_body(reader, limit);
  std::string first, chosen;
  size_t total = 0;
  bool in_file = false, in_chosen = false, have_chosen = false;
  const bool read = reader(
      [&](const httplib::MultipartFormData& part) {
        in_file = !part.filename.empty() || !part.content_type.empty() || first.empty();
        in_chosen = !have_chosen && (part.name == "data" || part.name == "file" || part.name == "image");
        have_chosen = have_chosen || in_chosen;
        return true;
      },
      [&](const char* data, size_t n) {
        if ((total += n) > limit) return false;
        if (in_chosen) chosen.append(data, n);
        else if (in_file && !have_chosen) first.append(data, n);
        return true;
      });
  if (!read) body_unread();
  std::string image = have_chosen ? chosen : first;
  if (image.empty()) throw serve::RequestError(400, "the form holds no file (send the image in a field named data or file)");
  return image;
}

class HttplibFrontEnd : public FrontEnd {
 public:
  explicit HttplibFrontEnd(InferenceService& service) : service_(service) {
    routes();
    install_limits();
  }
  int bind() override;
  void serve() override {
    http_.listen_after_bind();
    listen_returned_ = true;
  }
  void stop() override {
    // httplib's stop() does nothing before listen has started: a model that fails
    // at once (a truncated file) would otherwise leave the server listening for ever.
    while (!http_.is_running() && !listen_returned_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    http_.stop();
  }
  std::string scheme() const override { return "http"; }

 private:
  void routes();
  void install_limits();

  InferenceService& service_;
  httplib::Server http_;
  std::atomic<bool> listen_returned_{false};
};

int HttplibFrontEnd::bind() {
  const auto& o = service_.options();
  if (o.port == 0) {
    const int port = http_.bind_to_any_port(o.host);
    if (port < 0) throw Error("cannot listen on " + o.host + " (no free port)");
    return port;
  }
  if (!http_.bind_to_port(o.host, o.port)) {
    throw Error(fmt::format("cannot listen on {}:{}", o.host, o.port),
                "another program may use the port: choose another with --port, or --port 0 for any free one");
  }
  return o.port;
}

void HttplibFrontEnd::routes() {
  http_.Get(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
    auto reply = get_route(service_, req.path);
    if (!reply) {
      res.status = 404;  // the error handler writes the body
      return;
    }
    send(res, *reply);
  });
  http_.Post(R"(/predictions/([^/]+))", [this](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& reader) {
    std::string image;
    try {
      image = upload_of(req, reader, service_.body_limit());
    } catch (const serve::RequestError& e) {
      send(res, error_reply(e));
      return;
    }
    send(res, predictions(service_, req.matches[1], image, param_of(req, "top_k"), param_of(req, "threshold")));
  });
  http_.Post(R"(/v2/models/([^/]+)/infer)", [this](const httplib::Request& req, httplib::Response& res,
                                                    const httplib::ContentReader& reader) {
    std::string body;
    try {
      body = read_body(reader, service_.body_limit());
    } catch (const serve::RequestError& e) {
      send(res, error_reply(e));
      return;
    }
    send(res, oip_infer(service_, req.matches[1], body, header_of(req, "Inference-Header-Content-Length")));
  });
}

void HttplibFrontEnd::install_limits() {
  const auto& o = service_.options();
  http_.set_payload_max_length(service_.body_limit());
  // httplib closes a kept-alive connection after 5 requests by default: clients
  // that post many images would reconnect every fifth.
  http_.set_keep_alive_max_count(1000);
  // A response goes out as two writes (head, then body): with Nagle's algorithm
  // the body waits for the client's delayed ACK of the head, up to 40 ms.
  http_.set_tcp_nodelay(true);
  http_.set_read_timeout(o.read_timeout_seconds, 0);
  http_.set_write_timeout(o.read_timeout_seconds, 0);
  const int64_t batch_total = static_cast<int64_t>(service_.models().size()) * o.model.batching.max_batch_size;
  const int threads = o.http_threads > 0 ? o.http_threads : static_cast<int>(std::max<int64_t>(16, 2 * batch_total));
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_.set_pre_routing_handler([limit = service_.body_limit()](const httplib::Request& req, httplib::Response& res) {
    t_request_start = Clock::now();
    // Refused from the head, before any of the body is read (httplib would read
    // and discard it all first): the client learns at once and is told to hang up.
    if (req.has_header("Content-Length") &&
        std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > limit) {
      res.status = 413;
      res.set_header("Connection", "close");
      res.set_content(serve::error_body(kBodyTooLarge).dump(), "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404   ? "no route " + req.method + " " + req.path + " (see GET /v2)"
                                : res.status == 413 ? kBodyTooLarge
                                                    : fmt::format("HTTP {}", res.status);
    res.set_content(serve::error_body(message).dump(), "application/json");
  });
  http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send(res, json_reply(500, serve::error_body(message)));
  });
  http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const std::string model = model_of(req.path);
    const double seconds = std::chrono::duration<double>(Clock::now() - t_request_start).count();
    bool known = false;
    for (const auto& n : service_.model_names()) known = known || n == model;
    service_.metrics().request(route_of(req.path), known ? model : "", res.status, seconds);
  });
}

}  // namespace

std::unique_ptr<FrontEnd> make_http_front_end(InferenceService& service) {
  return std::make_unique<HttplibFrontEnd>(service);
}

}  // namespace tabby::server
