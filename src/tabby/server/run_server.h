// `tabby serve RUN...`: the models of run folders behind an HTTP/1.1 front
// end (server/http_front_end.h) and, with --grpc-port, a gRPC one
// (server/grpc_front_end.h), both over one InferenceService.
// SIGTERM/SIGINT: readiness turns 503 at once, requests in flight finish
// (within the drain timeout), and run_server returns 0.
#pragma once

#include "tabby/server/serve_options.h"

namespace tabby::server {

// Serves until SIGTERM or SIGINT; returns the process's exit status.
// tabby::Error for bad options or run folders, before anything listens.
int run_server(const ServeOptions& options);

}  // namespace tabby::server
