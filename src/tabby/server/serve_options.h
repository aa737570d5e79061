// The settings of `tabby serve` (flags in cli/cmd_serve.cpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tabby/server/served_model.h"

namespace tabby::server {

// What one HTTP connection may cost before it is refused or closed: a
// connection holds memory, never a thread, and these bound the memory and
// the time a slow or idle client can hold.
struct ConnectionLimits {
  int max_connections = 10000;          // open connections; over it, 503 and close
  double header_timeout_seconds = 10;   // from a request's first byte to its blank line
  double idle_timeout_seconds = 60;     // a kept-alive connection with no request
  double body_timeout_seconds = 10;     // a body that stops arriving: 408
  double min_body_bytes_per_second = 4096;  // a body gets body_timeout_seconds plus its length at this rate
  size_t max_header_bytes = 16 * 1024;  // request line and headers together
  int max_header_count = 100;
};

struct ServeOptions {
  std::vector<std::filesystem::path> runs;
  std::vector<std::string> names;  // one per run; empty: the run folders' names
  std::string host = "127.0.0.1";
  int port = 8080;                 // 0: any free port (printed)
  int grpc_port = -1;              // -1: no gRPC; 0: any free port (printed)
  ModelOptions model;
  double max_body_mb = 16;
  int http_threads = 0;            // 0: enough for a full batch of every model, at least 16
  double drain_timeout_seconds = 30;
  double threshold = 0;            // default of /predictions' ?threshold
  int read_timeout_seconds = 10;   // an answer the client stops reading is dropped (bodies: limits)
  ConnectionLimits limits;
};

}  // namespace tabby::server
