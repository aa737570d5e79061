// Triton's binary tensor data extension of the Open Inference Protocol over
// HTTP, which tritonclient.http speaks by default. A request's body is a JSON
// header of `Inference-Header-Content-Length` bytes followed by the inputs'
// raw bytes, in the order of the inputs, each input's share given by its
// `parameters.binary_data_size`. FP32 is little-endian IEEE floats; BYTES is
// its elements, each after its length (4 bytes, little-endian). A response
// is laid out the same way when the request asks for it (`binary_data` on the
// output or `binary_data_output` on the request).
// Nothing here touches the network or the model: parsing and encoding.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tabby/serve/oip.h"

namespace tabby::serve {

// The raw FP32 tensor `raw` as `count` floats; RequestError(400) unless it
// holds exactly that many, all finite. `what` names the tensor in messages.
std::vector<float> fp32_from_raw(std::string_view raw, size_t count, const std::string& what);
// The `count` length-prefixed elements of the raw BYTES tensor `raw`;
// RequestError(400) for a length or an element cut off, or bytes left over.
std::vector<std::string> bytes_from_raw(std::string_view raw, size_t count, const std::string& what);

std::string raw_of_fp32(const std::vector<float>& values);
std::string raw_of_bytes(const std::vector<std::string>& elements);

// A request body with an Inference-Header-Content-Length header of
// `header_length`: RequestError(400) when the length is not a number, runs
// past the body, or its bytes are not a JSON object of a request this model
// can run.
InferRequest parse_binary_infer_request(std::string_view body, const std::string& header_length,
                                        const ModelSignature& model);

struct EncodedInferResponse {
  std::string body;
  // The length of the JSON at the body's start when raw output bytes follow
  // it (sent as Inference-Header-Content-Length); nullopt for all-JSON.
  std::optional<size_t> header_length;
};

// infer_response() as the request asked for it: all JSON, or with the
// output's data as raw bytes after the JSON (its size in
// `parameters.binary_data_size`).
EncodedInferResponse encode_infer_response(const InferRequest& request, const ModelSignature& model,
                                           const std::vector<float>& probabilities);

}  // namespace tabby::serve
