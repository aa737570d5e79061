// tabby's HTTP/1.1 front end: the routes of server/http_routes.h
//
//   GET  /                         the upload page
//   GET  /v2, /v2/health/live      server metadata; alive once the process listens
//   GET  /v2/health/ready          200 once every model is loaded and warmed, 503 before and while draining
//   GET  /v2/models/{m}[/ready]    model metadata and readiness
//   POST /v2/models/{m}/infer      OIP inference (FP32 pixels or BYTES images)
//   POST /predictions/{m}          an image as the body (or a multipart file):
//                                  {"label", "probability", "top_k": [...]}, ?top_k=K, ?threshold=T
//   GET  /metrics                  Prometheus text
// Errors are {"error": "..."} with 400 (bad request or image, a malformed
// head, a body shorter than its Content-Length), 404 (no such model or route),
// 405 (wrong method), 408 (head or body too slow), 413 (body over the limit,
// refused before it is read), 431 (head too large) and 503 (not ready, queue
// full: with Retry-After, draining, or over --max-connections). The limits on
// connections are ServeOptions::limits.
#pragma once

#include <memory>

#include "tabby/server/front_end.h"
#include "tabby/server/inference_service.h"

namespace tabby::server {

std::unique_ptr<FrontEnd> make_http_front_end(InferenceService& service);

}  // namespace tabby::server
