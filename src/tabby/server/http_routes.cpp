#include "tabby/server/http_routes.h"

#include <regex>

#include "tabby/serve/oip_binary.h"
#include "tabby/serve/upload_page.h"

namespace tabby::server {

using nlohmann::json;

namespace {

constexpr int kRetryAfterSeconds = 1;

const std::regex& model_path() {
  static const std::regex re("^/(?:v2/models|predictions)/([^/]+)(?:/ready|/infer)?$");
  return re;
}

}  // namespace

HttpReply json_reply(int status, const json& body) {
  HttpReply r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpReply error_reply(const serve::RequestError& e) {
  HttpReply r = json_reply(e.status(), serve::error_body(e.what()));
  if (e.status() == 503) r.headers.emplace_back("Retry-After", std::to_string(kRetryAfterSeconds));
  return r;
}

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

std::string model_of(const std::string& path) {
  std::smatch m;
  return std::regex_match(path, m, model_path()) ? std::string(m[1]) : "";
}

std::optional<HttpReply> get_route(InferenceService& service, const std::string& path) {
  try {
    if (path == "/") {
      HttpReply r;
      r.content_type = "text/html; charset=utf-8";
      r.body = serve::upload_page(service.model_names(), TABBY_VERSION);
      return r;
    }
    if (path == "/metrics") {
      HttpReply r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = service.metrics().exposition();
      return r;
    }
    if (path == "/v2" || path == "/v2/") return json_reply(200, serve::server_metadata(TABBY_VERSION));
    if (path == "/v2/health/live") return json_reply(200, {{"live", true}});
    if (path == "/v2/health/ready") {
      const bool ready = service.ready();
      return json_reply(ready ? 200 : 503, {{"ready", ready}});
    }
    static const std::regex metadata("^/v2/models/([^/]+)$"), ready("^/v2/models/([^/]+)/ready$");
    std::smatch m;
    if (std::regex_match(path, m, metadata)) {
      return json_reply(200, serve::model_metadata(service.model_or_404(m[1]).signature()));
    }
    if (std::regex_match(path, m, ready)) {
      const bool is_ready = service.model_ready(m[1]);
      return json_reply(is_ready ? 200 : 503, {{"name", std::string(m[1])}, {"ready", is_ready}});
    }
  } catch (const serve::RequestError& e) {
    return error_reply(e);
  }
  return std::nullopt;
}

HttpReply oip_infer(InferenceService& service, const std::string& model, const std::string& body,
                    const std::optional<std::string>& inference_header_length) {
  InferenceService::InFlight counted(service);
  try {
    ServedModel& m = service.ready_model(model);
    serve::InferRequest r;
    if (inference_header_length) {
      r = serve::parse_binary_infer_request(body, *inference_header_length, m.signature());
    } else {
      const json request = json::parse(body, nullptr, /*allow_exceptions=*/false);
      if (request.is_discarded()) throw serve::RequestError(400, "the request body is not valid JSON");
      r = serve::parse_infer_request(request, m.signature());
    }
    const std::vector<float> probs = service.infer(m, r);
    // A JSON request may still ask for its output as raw bytes (binary_data).
    serve::EncodedInferResponse encoded = serve::encode_infer_response(r, m.signature(), probs);
    HttpReply reply;
    reply.body = std::move(encoded.body);
    if (encoded.header_length) {
      reply.content_type = "application/octet-stream";
      reply.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*encoded.header_length));
    }
    return reply;
  } catch (const serve::RequestError& e) {
    return error_reply(e);
  }
}

HttpReply predictions(InferenceService& service, const std::string& model, const std::string& image,
                      const std::optional<std::string>& top_k, const std::optional<std::string>& threshold) {
  InferenceService::InFlight counted(service);
  try {
    ServedModel& m = service.ready_model(model);
    int k = 5;
    std::optional<double> t;
    try {
      if (top_k) k = std::stoi(*top_k);
      if (threshold) t = std::stod(*threshold);
    } catch (const std::exception&) {
      throw serve::RequestError(400, "top_k must be an integer and threshold a number");
    }
    // Checked before the forward pass: a bad query costs no inference.
    if (k < 1 || (t && !(*t >= 0 && *t <= 1))) {
      throw serve::RequestError(400, "top_k must be at least 1 and threshold between 0 and 1");
    }
    const std::vector<float> probs = service.run_images(m, m.pixels_of(image), 1);
    return json_reply(200, service.predictions_body(m, probs, k, t));
  } catch (const serve::RequestError& e) {
    return error_reply(e);
  }
}

}  // namespace tabby::server
