// The gRPC messages of the Open Inference Protocol (grpc/inference.proto)
// to and from tabby's transport-neutral requests (serve/oip.h): the checks
// and messages of the JSON requests, raw contents read and written by
// serve/oip_binary.h.
#pragma once

#include <vector>

#include "tabby/serve/oip.h"
#include "tabby/server/grpc/inference.pb.h"

namespace tabby::server {

// RequestError(400) for anything that is not a request this model can run.
// The input's data is in request.raw_input_contents or in its typed contents
// (fp32_contents, bytes_contents).
serve::InferRequest infer_request_of(const inference::ModelInferRequest& request, const serve::ModelSignature& model);
// The probabilities (or the classification extension's strings) in raw_output_contents.
inference::ModelInferResponse infer_response_of(const serve::InferRequest& request, const serve::ModelSignature& model,
                                                const std::vector<float>& probabilities);
inference::ServerMetadataResponse server_metadata_of(const std::string& version);
inference::ModelMetadataResponse model_metadata_of(const serve::ModelSignature& model);

}  // namespace tabby::server
