#include "tabby/server/http_server.h"

#include <httplib.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <thread>

#include "tabby/serve/metrics.h"
#include "tabby/serve/oip.h"
#include "tabby/serve/upload_page.h"
#include "tabby/server/signals.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"

namespace tabby::server {

namespace {

constexpr const char* kBodyTooLarge = "the body is larger than this server takes (--max-body-mb)";


using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kRetryAfterSeconds = 1;

// The route pattern a path belongs to, for metrics.
std::string route_of(const std::string& path) {
  static const std::vector<std::pair<std::regex, std::string>> routes = {
      {std::regex("^/$"), "/"},
      {std::regex("^/v2/?$"), "/v2"},
      {std::regex("^/v2/health/live$"), "/v2/health/live"},
      {std::regex("^/v2/health/ready$"), "/v2/health/ready"},
      {std::regex("^/v2/models/[^/]+$"), "/v2/models/{m}"},
      {std::regex("^/v2/models/[^/]+/ready$"), "/v2/models/{m}/ready"},
      {std::regex("^/v2/models/[^/]+/infer$"), "/v2/models/{m}/infer"},
      {std::regex("^/predictions/[^/]+$"), "/predictions/{m}"},
      {std::regex("^/metrics$"), "/metrics"},
  };
  for (const auto& [re, name] : routes) {
    if (std::regex_match(path, re)) return name;
  }
  return "other";
}

// "runs/cats/" and "runs/cats" are both "cats"; "." is the current folder's name.
std::string folder_name(const std::filesystem::path& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void refuse(httplib::Response& res, const serve::RequestError& e) {
  if (e.status() == 503) res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
  reply(res, e.status(), serve::error_body(e.what()));
}

class Server {
 public:
  explicit Server(const ServeOptions& o);
  int run();

 private:
  void routes();
  void health_routes();
  void model_routes();
  void infer_routes();
  void install_limits();
  ServedModel& model_or_404(const std::string& name);
  ServedModel& ready_model(const std::string& name);
  std::vector<float> run_images(ServedModel& m, std::vector<float> pixels, int64_t n);
  json predictions_body(ServedModel& m, const httplib::Request& req, const std::vector<float>& probs);
  void load_models();
  void drain(int signal);
  void stop_listening();  // once listening has begun (or ended)
  bool all_ready() const;
  size_t body_limit() const { return static_cast<size_t>(options_.max_body_mb * 1024 * 1024); }

  ServeOptions options_;
  serve::Metrics metrics_;
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::map<std::string, ServedModel*> by_name_;
  httplib::Server http_;
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<int> exit_code_{0};
  std::atomic<bool> listen_returned_{false};
};

// Counts an inference request in flight while it lives (the drain waits for them).
class InFlight {
 public:
  explicit InFlight(std::atomic<int>& n) : n_(n) { ++n_; }
  ~InFlight() { --n_; }

 private:
  std::atomic<int>& n_;
};

thread_local Clock::time_point t_request_start;

Server::Server(const ServeOptions& o) : options_(o) {
  if (o.runs.empty()) throw UsageError("give at least one run folder to serve", "tabby serve RUN [RUN...]");
  if (!o.names.empty() && o.names.size() != o.runs.size()) {
    throw UsageError("give one --name per run folder, or none");
  }
  for (size_t k = 0; k < o.runs.size(); ++k) {
    const std::string name = o.names.empty() ? folder_name(o.runs[k]) : o.names[k];
    if (by_name_.count(name)) throw UsageError("two models are named '" + name + "'", "name them with --name");
    models_.push_back(std::make_unique<ServedModel>(name, o.runs[k], o.model, metrics_));
    by_name_[name] = models_.back().get();
  }
  routes();
  install_limits();
}

bool Server::all_ready() const {
  for (const auto& m : models_) {
    if (!m->ready()) return false;
  }
  return true;
}

ServedModel& Server::model_or_404(const std::string& name) {
  const auto it = by_name_.find(name);
  if (it != by_name_.end()) return *it->second;
  std::string known;
  for (const auto& [n, m] : by_name_) known += (known.empty() ? "" : ", ") + n;
  throw serve::RequestError(404, "no model named '" + name + "' (this server has: " + known + ")");
}

ServedModel& Server::ready_model(const std::string& name) {
  ServedModel& m = model_or_404(name);
  if (draining_) throw serve::RequestError(503, "the server is shutting down");
  if (!m.ready()) throw serve::RequestError(503, "model '" + name + "' is still loading");
  return m;
}

std::vector<float> Server::run_images(ServedModel& m, std::vector<float> pixels, int64_t n) {
  auto future = m.infer(std::move(pixels), n);
  if (!future) throw serve::RequestError(503, "the queue of model '" + m.name() + "' is full; retry shortly");
  return future->get();
}

void Server::routes() {
  http_.Get("/", [this](const httplib::Request&, httplib::Response& res) {
    std::vector<std::string> names;
    for (const auto& m : models_) names.push_back(m->name());
    res.set_content(serve::upload_page(names, TABBY_VERSION), "text/html; charset=utf-8");
  });
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.exposition(), "text/plain; version=0.0.4");
  });
  health_routes();
  model_routes();
  infer_routes();
}

void Server::health_routes() {
  http_.Get(R"(/v2/?)", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, serve::server_metadata(TABBY_VERSION));
  });
  http_.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
    reply(res, 200, {{"live", true}});
  });
  http_.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = !draining_ && all_ready();
    reply(res, ready ? 200 : 503, {{"ready", ready}});
  });
}

void Server::model_routes() {
  http_.Get(R"(/v2/models/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      reply(res, 200, serve::model_metadata(model_or_404(req.matches[1]).signature()));
    } catch (const serve::RequestError& e) {
      refuse(res, e);
    }
  });
  http_.Get(R"(/v2/models/([^/]+)/ready)", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      const bool ready = !draining_ && model_or_404(req.matches[1]).ready();
      reply(res, ready ? 200 : 503, {{"name", std::string(req.matches[1])}, {"ready", ready}});
    } catch (const serve::RequestError& e) {
      refuse(res, e);
    }
  });
}

json Server::predictions_body(ServedModel& m, const httplib::Request& req, const std::vector<float>& probs) {
  int k = 5;
  double threshold = options_.threshold;
  try {
    if (req.has_param("top_k")) k = std::stoi(req.get_param_value("top_k"));
    if (req.has_param("threshold")) threshold = std::stod(req.get_param_value("threshold"));
  } catch (const std::exception&) {
    throw serve::RequestError(400, "top_k must be an integer and threshold a number");
  }
  if (k < 1 || !(threshold >= 0 && threshold <= 1)) {
    throw serve::RequestError(400, "top_k must be at least 1 and threshold between 0 and 1");
  }
  Classification c = m.top(probs.data(), k);
  apply_threshold(c, threshold);
  json top = json::array();
  for (const auto& s : c.top_k) top.push_back({{"label", s.label}, {"index", s.index}, {"probability", s.probability}});
  return {{"label", c.label}, {"probability", c.probability}, {"top_k", top}};
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

void Server::infer_routes() {
  http_.Post(R"(/predictions/([^/]+))", [this](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& reader) {
    InFlight counted(in_flight_);
    try {
      ServedModel& m = ready_model(req.matches[1]);
      const std::vector<float> probs = run_images(m, m.pixels_of(upload_of(req, reader, body_limit())), 1);
      reply(res, 200, predictions_body(m, req, probs));
    } catch (const serve::RequestError& e) {
      refuse(res, e);
    }
  });
  http_.Post(R"(/v2/models/([^/]+)/infer)", [this](const httplib::Request& req, httplib::Response& res,
                                                    const httplib::ContentReader& reader) {
    InFlight counted(in_flight_);
    try {
      ServedModel& m = ready_model(req.matches[1]);
      const json body = json::parse(read_body(reader, body_limit()), nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded()) throw serve::RequestError(400, "the request body is not valid JSON");
      serve::InferRequest r = serve::parse_infer_request(body, m.signature());
      for (const auto& encoded : r.encoded) {
        const auto pixels = m.pixels_of(encoded);
        r.pixels.insert(r.pixels.end(), pixels.begin(), pixels.end());
      }
      const std::vector<float> probs = run_images(m, std::move(r.pixels), r.images);
      reply(res, 200, serve::infer_response(r, m.signature(), probs));
    } catch (const serve::RequestError& e) {
      refuse(res, e);
    }
  });
}

void Server::install_limits() {
  http_.set_payload_max_length(body_limit());
  // httplib closes a kept-alive connection after 5 requests by default: clients
  // that post many images would reconnect every fifth.
  http_.set_keep_alive_max_count(1000);
  // A response goes out as two writes (head, then body): with Nagle's algorithm
  // the body waits for the client's delayed ACK of the head, up to 40 ms.
  http_.set_tcp_nodelay(true);
  http_.set_read_timeout(options_.read_timeout_seconds, 0);
  http_.set_write_timeout(options_.read_timeout_seconds, 0);
  int64_t batch_total = 0;
  for (const auto& m : models_) batch_total += options_.model.batching.max_batch_size;
  const int threads = options_.http_threads > 0 ? options_.http_threads
                                                : static_cast<int>(std::max<int64_t>(16, 2 * batch_total));
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_.set_pre_routing_handler([limit = body_limit()](const httplib::Request& req, httplib::Response& res) {
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
    reply(res, 500, serve::error_body(message));
  });
  http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const std::string route = route_of(req.path);
    const std::string model = req.matches.size() > 1 ? std::string(req.matches[1]) : "";
    const double seconds = std::chrono::duration<double>(Clock::now() - t_request_start).count();
    metrics_.request(route, by_name_.count(model) ? model : "", res.status, seconds);
  });
}

void Server::load_models() {
  try {
    for (auto& m : models_) m->load();
    log::info("ready: every model is loaded and warmed");
  } catch (const std::exception& e) {
    const auto* tabby_error = dynamic_cast<const Error*>(&e);
    log::error(std::string("a model could not be loaded: ") + e.what(), tabby_error ? tabby_error->hint() : "");
    exit_code_ = 1;
    stop_listening();
  }
}

void Server::stop_listening() {
  // httplib's stop() does nothing before listen has started: a model that fails
  // at once (a truncated file) would otherwise leave the server listening for ever.
  while (!http_.is_running() && !listen_returned_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http_.stop();
}

void Server::drain(int signal) {
  // Not ready before the log says so: whoever reads the log may rely on it.
  draining_ = true;
  log::infof("{}: not ready any more; waiting for {} requests in flight (at most {}s)",
             signal == SIGINT ? "SIGINT" : "SIGTERM", in_flight_.load(), options_.drain_timeout_seconds);
  // Closed models run what is queued at once instead of waiting for batches to fill.
  for (auto& m : models_) m->close();
  const auto deadline = Clock::now() + std::chrono::duration<double>(options_.drain_timeout_seconds);
  while (in_flight_.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (in_flight_.load() > 0) {
    log::warnf("{} requests still in flight after the drain timeout: answering those still queued with 503",
               in_flight_.load());
    for (auto& m : models_) m->abandon();
    // Their handlers answer now; one inside a forward pass finishes it.
    const auto grace = Clock::now() + std::chrono::seconds(5);
    while (in_flight_.load() > 0 && Clock::now() < grace) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop_listening();
}

int Server::run() {
  int port = options_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(options_.host);
    if (port < 0) throw Error("cannot listen on " + options_.host + " (no free port)");
  } else if (!http_.bind_to_port(options_.host, port)) {
    throw Error(fmt::format("cannot listen on {}:{}", options_.host, port),
                "another program may use the port: choose another with --port, or --port 0 for any free one");
  }
  StopSignals signals([this](int sig) { drain(sig); });
  std::thread loader([this] { load_models(); });
  std::string names;
  for (const auto& m : models_) names += (names.empty() ? "" : ", ") + m->name();
  log::infof("tabby serve: listening on http://{}:{} (models: {}); loading", options_.host, port, names);
  http_.listen_after_bind();
  listen_returned_ = true;
  loader.join();
  log::info(exit_code_ == 0 ? "stopped" : "stopped after an error");
  return exit_code_;
}

}  // namespace

int run_server(const ServeOptions& options) { return Server(options).run(); }

}  // namespace tabby::server
