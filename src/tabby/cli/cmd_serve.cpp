// tabby serve RUN...: flags -> ServeOptions -> run_server (tabby/server).
#include <memory>

#include "tabby/cli/commands.h"
#include "tabby/util/error.h"
#ifdef TABBY_HAVE_SERVER
#include "tabby/server/run_server.h"
#endif

namespace tabby::cli {

namespace {

struct ServeFlags {
  std::vector<std::string> runs, names;
  std::string host = "127.0.0.1", device = "auto", precision = "fp32", tta = "none";
  int port = 8080, threads = 0, instances = 0, http_threads = 0, max_batch_delay_ms = 5;
  int64_t max_batch_size = 32;
  size_t queue = 256;
  double max_body_mb = 16, drain_timeout = 30, threshold = 0, max_image_mp = 40;
  int max_connections = 10000, max_headers = 100;
  double header_timeout = 10, idle_timeout = 60, body_timeout = 10, min_body_rate_kb = 4, max_header_kb = 16;
  int grpc_port = -1;  // -1: no gRPC
};

}  // namespace

Command add_serve(CLI::App& root) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* app = root.add_subcommand(
      "serve", "Serve trained runs over HTTP: Open Inference Protocol v2, POST /predictions/{model}, an upload page");
  app->add_option("runs", f->runs, "Run folders to serve (each a model, named after its folder)")->required();
  app->add_option("--name", f->names, "Model names, one per run folder (default: the folders' names)");
  app->add_option("--host", f->host, "Address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)");
  app->add_option("--port", f->port, "Port (default 8080; 0: any free port, printed)");
  app->add_option("--max-batch-size", f->max_batch_size, "Images per forward pass (default 32)");
  app->add_option("--max-batch-delay-ms", f->max_batch_delay_ms,
                  "Longest wait for a batch to fill, from its first request (default 5)");
  app->add_option("--queue", f->queue, "Requests that may wait per model before 503 (default 256)");
  app->add_option("--max-body-mb", f->max_body_mb, "Largest request body; larger gets 413 unread (default 16)");
  app->add_option("--max-image-megapixels", f->max_image_mp, "Largest image decoded (default 40)");
  app->add_option("--threshold", f->threshold, "Default ?threshold of /predictions: below it the label is 'unknown'");
  app->add_option("--drain-timeout", f->drain_timeout,
                  "Seconds requests in flight get to finish after SIGTERM/SIGINT (default 30)");
  app->add_option("--device", f->device, "auto, cpu, cuda or cuda:N");
  app->add_option("--instances", f->instances,
                  "Copies of each model taking batches side by side, one inference thread each (default: 1 on a "
                  "GPU; on the CPU one per two cores, one per core below four, at most 4)");
  app->add_option("--threads", f->threads, "CPU threads of each instance's forward pass (default: cores / instances)");
  app->add_option("--precision", f->precision,
                  "fp32 (default: the probabilities of tabby predict), bf16 (faster on GPUs and on CPUs with "
                  "AVX512-BF16 or AMX, slower on other CPUs; probabilities differ in the second or third decimal) "
                  "or auto (bf16 on CUDA)");
  app->add_option("--tta", f->tta, "Test-time augmentation: none (default) or flip (each image's mirror averaged in: usually a few tenths of a point of accuracy for twice the compute)");
  app->add_option("--http-threads", f->http_threads,
                  "Threads running inference requests (default: twice the batch sizes, at least 16)");
  app->add_option("--max-connections", f->max_connections,
                  "Open HTTP connections; over it a client gets 503 and is hung up on (default 10000)");
  app->add_option("--header-timeout", f->header_timeout,
                  "Seconds from a request's first byte to the end of its head; slower gets 408 (default 10)");
  app->add_option("--idle-timeout", f->idle_timeout,
                  "Seconds a kept-alive connection may wait for its next request (default 60)");
  app->add_option("--body-timeout", f->body_timeout,
                  "Seconds a request body may stall; it gets 408 then (default 10)");
  app->add_option("--min-body-rate-kb", f->min_body_rate_kb,
                  "Slowest body in KB/s: one that takes longer than --body-timeout plus its length at this rate gets 408 (default 4)");
  app->add_option("--max-header-kb", f->max_header_kb,
                  "Largest request line and headers together, in KB; larger gets 431 (default 16)");
  app->add_option("--max-headers", f->max_headers, "Most header fields in a request; more gets 431 (default 100)");
  app->add_option("--grpc-port", f->grpc_port,
                  "Also serve the Open Inference Protocol over gRPC on this port (0: any free port, printed; "
                  "default: no gRPC)");
  Action run = [f]() -> int {
#ifdef TABBY_HAVE_SERVER
    server::ServeOptions o;
    for (const auto& r : f->runs) o.runs.emplace_back(r);
    o.names = f->names;
    o.host = f->host;
    o.port = f->port;
    if (f->port < 0 || f->port > 65535) throw UsageError("--port must be 0 to 65535");
    if (f->grpc_port < -1 || f->grpc_port > 65535) throw UsageError("--grpc-port must be 0 to 65535");
    o.grpc_port = f->grpc_port;
    if (f->instances < 0 || f->threads < 0) throw UsageError("--instances and --threads cannot be negative (0: chosen from the cores)");
    if (f->max_batch_size < 1 || f->queue < 1 || f->max_batch_delay_ms < 0) {
      throw UsageError("--max-batch-size and --queue must be at least 1, --max-batch-delay-ms at least 0");
    }
    if (!(f->max_body_mb > 0) || !(f->drain_timeout >= 0) || !(f->threshold >= 0 && f->threshold <= 1)) {
      throw UsageError("--max-body-mb must be positive, --drain-timeout >= 0 and --threshold between 0 and 1");
    }
    o.model.batching = {f->max_batch_size, std::chrono::milliseconds(f->max_batch_delay_ms), f->queue};
    o.model.classifier = {f->device, f->threads, f->precision, f->tta};
    o.model.instances = f->instances;
    o.model.max_image_pixels = static_cast<uint64_t>(f->max_image_mp * 1e6);
    o.max_body_mb = f->max_body_mb;
    o.http_threads = f->http_threads;
    o.drain_timeout_seconds = f->drain_timeout;
    o.threshold = f->threshold;
    if (f->max_connections < 1 || f->max_headers < 1 || !(f->max_header_kb >= 1) || !(f->header_timeout > 0) ||
        !(f->idle_timeout > 0) || !(f->body_timeout > 0) || !(f->min_body_rate_kb >= 0)) {
      throw UsageError("--max-connections and --max-headers must be at least 1, --max-header-kb at least 1, "
                       "the timeouts positive and --min-body-rate-kb at least 0");
    }
    o.limits.max_connections = f->max_connections;
    o.limits.header_timeout_seconds = f->header_timeout;
    o.limits.idle_timeout_seconds = f->idle_timeout;
    o.limits.body_timeout_seconds = f->body_timeout;
    o.limits.min_body_bytes_per_second = f->min_body_rate_kb * 1024;
    o.limits.max_header_bytes = static_cast<size_t>(f->max_header_kb * 1024);
    o.limits.max_header_count = f->max_headers;
    return server::run_server(o);
#else
    throw Error("this tabby was built without Boost.Beast, so it cannot serve",
                "install libboost-dev (scripts/install-deps.sh) and rebuild");
#endif
  };
  return {app, run};
}

}  // namespace tabby::cli
