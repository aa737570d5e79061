// The answers of tabby's HTTP routes, apart from the transport that carries
// them: a front end parses a request's line and head, reads the body, and
// calls these; what comes back is written as it is.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tabby/server/inference_service.h"

namespace tabby::server {

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type and Content-Length
};

HttpReply json_reply(int status, const nlohmann::json& body);
// {"error": ...} with the error's status (and Retry-After for a 503).
HttpReply error_reply(const serve::RequestError& error);

// The route pattern a path belongs to, for metrics ("/v2/models/{m}/infer").
std::string route_of(const std::string& path);
// The model named by a path under /v2/models/{m} or /predictions/{m}; "" for none.
std::string model_of(const std::string& path);

// GET routes: /, /metrics, /v2, /v2/health/{live,ready}, /v2/models/{m}[/ready];
// nullopt for a path that is none of them.
std::optional<HttpReply> get_route(InferenceService& service, const std::string& path);

// POST /v2/models/{m}/infer: `body` is JSON, or, when the request has Triton's
// Inference-Header-Content-Length header (`inference_header_length`), that many
// bytes of JSON followed by the tensors' raw bytes (the binary tensor data
// extension). Errors come back as error replies.
HttpReply oip_infer(InferenceService& service, const std::string& model, const std::string& body,
                    const std::optional<std::string>& inference_header_length);

// POST /predictions/{m}: one encoded image; `top_k` and `threshold` are the
// query's raw values (nullopt when absent).
HttpReply predictions(InferenceService& service, const std::string& model, const std::string& image,
                      const std::optional<std::string>& top_k, const std::optional<std::string>& threshold);

}  // namespace tabby::server
