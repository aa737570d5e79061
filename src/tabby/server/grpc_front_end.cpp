#include "tabby/server/grpc_front_end.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "tabby/server/grpc/inference.grpc.pb.h"
#include "tabby/server/grpc_messages.h"
#include "tabby/util/error.h"

namespace tabby::server {

namespace {

using GrpcClock = std::chrono::steady_clock;

// How long calls still open when the server stops get. The drain has already
// waited for the inferences; what is left is answers being written and calls
// that came in during the drain (which grpc++ would otherwise hold open until
// this deadline, delaying the exit).
constexpr auto kShutdownGrace = std::chrono::milliseconds(500);

grpc::StatusCode code_of(int http_status) {
  switch (http_status) {
    case 400: return grpc::StatusCode::INVALID_ARGUMENT;
    case 404: return grpc::StatusCode::NOT_FOUND;
    case 413: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case 503: return grpc::StatusCode::UNAVAILABLE;
    default: return grpc::StatusCode::INTERNAL;
  }
}

// The HTTP status a gRPC answer stands for in the metrics, so that both
// protocols count alike.
int http_status_of(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 413;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    default: return 500;
  }
}

// "[::1]:50051" for an IPv6 address, "127.0.0.1:50051" otherwise.
std::string grpc_address(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

class InferenceRpcs final : public inference::GRPCInferenceService::Service {
 public:
  explicit InferenceRpcs(InferenceService& service) : service_(service) {}

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* out) override {
    out->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const inference::ServerReadyRequest*,
                           inference::ServerReadyResponse* out) override {
    out->set_ready(service_.ready());
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const inference::ModelReadyRequest* in,
                          inference::ModelReadyResponse* out) override {
    return answer("ModelReady", in->name(), [&] {
      check_version(in->name(), in->version());
      out->set_ready(service_.model_ready(in->name()));
    });
  }
  grpc::Status ServerMetadata(grpc::ServerContext*, const inference::ServerMetadataRequest*,
                              inference::ServerMetadataResponse* out) override {
    *out = server_metadata_of(TABBY_VERSION);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* in,
                             inference::ModelMetadataResponse* out) override {
    return answer("ModelMetadata", in->name(), [&] {
      check_version(in->name(), in->version());
      *out = model_metadata_of(service_.model_or_404(in->name()).signature());
    });
  }
  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* in,
                          inference::ModelInferResponse* out) override {
    InferenceService::InFlight counted(service_);
    return answer("ModelInfer", in->model_name(), [&] {
      check_version(in->model_name(), in->model_version());
      ServedModel& m = service_.ready_model(in->model_name());
      serve::InferRequest r = infer_request_of(*in, m.signature());
      const std::vector<float> probabilities = service_.infer(m, r);
      *out = infer_response_of(r, m.signature(), probabilities);
    });
  }

 private:
  // Each model has the one version "1"; none asked for means that one.
  void check_version(const std::string& model, const std::string& version) {
    service_.model_or_404(model);
    if (!version.empty() && version != "1") {
      throw serve::RequestError(404, "model '" + model + "' has no version '" + version + "' (its one version is 1)");
    }
  }

  // Runs one call, turns a RequestError into its gRPC status and counts the call in the metrics.
  template <typename Work>
  grpc::Status answer(const char* method, const std::string& model, Work&& work) {
    const auto start = GrpcClock::now();
    grpc::Status status = grpc::Status::OK;
    try {
      work();
    } catch (const serve::RequestError& e) {
      status = grpc::Status(code_of(e.status()), e.what());
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    service_.record_request(std::string("grpc ") + method, model, http_status_of(status),
                            std::chrono::duration<double>(GrpcClock::now() - start).count());
    return status;
  }

  InferenceService& service_;
};

class GrpcFrontEnd : public FrontEnd {
 public:
  explicit GrpcFrontEnd(InferenceService& service) : service_(service), rpcs_(service) {}
  int bind() override;
  void serve() override {
    if (server_) server_->Wait();
  }
  void stop() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);  // grpc++ takes system_clock only
  }
  std::string scheme() const override { return "grpc"; }

 private:
  InferenceService& service_;
  InferenceRpcs rpcs_;
  std::unique_ptr<grpc::Server> server_;
};

// grpc++ starts serving as it binds: calls before the models are loaded are
// answered (not ready), as the HTTP front end answers them.
int GrpcFrontEnd::bind() {
  const auto& o = service_.options();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(grpc_address(o.host, o.grpc_port), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&rpcs_);
  // grpc++ sets SO_REUSEPORT by default: a second server on a busy port would
  // bind without an error and take half of the other's connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Larger messages get RESOURCE_EXHAUSTED from grpc++ before they reach a handler.
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(service_.body_limit(), INT32_MAX)));
  // As many threads as the HTTP front end answers with: a full batch of every model, twice.
  const int64_t batch_total = static_cast<int64_t>(service_.models().size()) * o.model.batching.max_batch_size;
  const int threads = o.http_threads > 0 ? o.http_threads : static_cast<int>(std::max<int64_t>(16, 2 * batch_total));
  grpc::ResourceQuota quota("tabby-serve");
  quota.SetMaxThreads(threads + 2);  // grpc++ keeps a polling thread or two besides the handlers
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    throw Error(fmt::format("cannot listen for gRPC on {}", grpc_address(o.host, o.grpc_port)),
                "another program may use the port: choose another with --grpc-port, or --grpc-port 0 for any free one");
  }
  return port;
}

}  // namespace

std::unique_ptr<FrontEnd> make_grpc_front_end(InferenceService& service) {
  return std::make_unique<GrpcFrontEnd>(service);
}

}  // namespace tabby::server
