// The gRPC front end: the Open Inference Protocol's GRPCInferenceService
// (grpc/inference.proto) over the shared InferenceService, on grpc++'s
// synchronous server. Built only where grpc++ is (TABBY_HAVE_GRPC).
#pragma once

#include <memory>

#include "tabby/server/front_end.h"
#include "tabby/server/inference_service.h"

namespace tabby::server {

// Listens on options.host:options.grpc_port (0: any free port).
std::unique_ptr<FrontEnd> make_grpc_front_end(InferenceService& service);

}  // namespace tabby::server
