// `tabby serve RUN...`: the models of run folders behind an HTTP server on
// cpp-httplib, speaking the Open Inference Protocol v2 (serve/oip.h) and
// TorchServe's raw-image route, with an upload page, Prometheus metrics,
// dynamic batching, bounded queues and a graceful drain:
//
//   GET  /                         the upload page
//   GET  /v2, /v2/health/live      server metadata; alive once the process listens
//   GET  /v2/health/ready          200 once every model is loaded and warmed, 503 before and while draining
//   GET  /v2/models/{m}[/ready]    model metadata and readiness
//   POST /v2/models/{m}/infer      OIP inference (FP32 pixels or BYTES images)
//   POST /predictions/{m}          an image as the body (or a multipart file):
//                                  {"label", "probability", "top_k": [...]}, ?top_k=K, ?threshold=T
//   GET  /metrics                  Prometheus text
// Errors are {"error": "..."} with 400 (bad request or image), 404 (no such
// model or route), 413 (body over the limit, refused before it is read) and
// 503 (not ready, queue full: with Retry-After, or draining).
// SIGTERM/SIGINT: readiness turns 503 at once, requests in flight finish
// (within the drain timeout), and run_server returns 0.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tabby/server/served_model.h"

namespace tabby::server {

struct ServeOptions {
  std::vector<std::filesystem::path> runs;
  std::vector<std::string> names;  // one per run; empty: the run folders' names
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (printed)
  ModelOptions model;
  double max_body_mb = 16;
  int http_threads = 0;            // 0: enough for a full batch of every model, at least 16
  double drain_timeout_seconds = 30;
  double threshold = 0;            // default of /predictions' ?threshold
  int read_timeout_seconds = 10;   // a client that stalls mid-upload is dropped
};

// Serves until SIGTERM or SIGINT; returns the process's exit status.
// tabby::Error for bad options or run folders, before anything listens.
int run_server(const ServeOptions& options);

}  // namespace tabby::server
