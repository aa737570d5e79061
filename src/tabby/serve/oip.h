// The Open Inference Protocol (KServe v2, also spoken by Triton, Seldon and
// ONNX Runtime Server) for an image classifier, as JSON in and out, or with
// Triton's binary tensor data extension (serve/oip_binary.h):
//   GET  /v2                      server metadata
//   GET  /v2/models/{m}           model metadata: input "images" FP32 [-1,3,H,W]
//                                 (RGB pixel values 0-255) or BYTES [-1] (encoded
//                                 images, base64), output "probabilities" FP32 [-1,C]
//   POST /v2/models/{m}/infer     one input tensor; the classification extension
//                                 (output parameter "classification": K) answers
//                                 BYTES "probability:index:label" strings instead.
//                                 An input's data is JSON `data`, or raw bytes
//                                 after the JSON (`parameters.binary_data_size`);
//                                 the output comes back as raw bytes when asked
//                                 (`binary_data` / `binary_data_output`).
// Nothing here touches the network or the model: parsing, checking and encoding.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tabby::serve {

// A request the server refuses, with the HTTP status to answer.
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct ModelSignature {
  std::string name;
  int height = 0, width = 0;
  std::vector<std::string> classes;
  int64_t max_images = 1024;  // images one request may hold
};

struct InferRequest {
  std::string id;
  std::string input_name;
  int64_t images = 0;
  std::vector<float> pixels;         // FP32 input: images x 3 x H x W
  std::vector<std::string> encoded;  // BYTES input: one encoded image each (decoded by the caller)
  std::string output_name = "probabilities";
  int classification = 0;  // > 0: the classification extension's top-K
  bool binary_output = false;  // answer the output's data as raw bytes (serve/oip_binary.h)
};

// The checks both protocols (JSON here, gRPC in server/grpc_messages.cpp)
// make of an input tensor and an output, with the same messages; each throws
// RequestError(400). They run before anything is allocated for the images, so
// a huge shape costs nothing.
// The number of images of an FP32 input of `shape` ([N, 3, H, W] at the model's size).
int64_t fp32_image_count(const std::vector<int64_t>& shape, const ModelSignature& model);
// The number of images of a BYTES input of `shape` ([N] or [N, 1]).
int64_t bytes_image_count(const std::vector<int64_t>& shape, const ModelSignature& model);
// The classification extension's K for a requested `top`, at most the number of classes.
int classification_of(int64_t top, const ModelSignature& model);
void check_output_name(const std::string& name);

nlohmann::json server_metadata(const std::string& version);
nlohmann::json model_metadata(const ModelSignature& model);
// RequestError(400) for anything that is not a request this model can run.
// `binary`: the raw tensor bytes that follow the JSON in a request of the
// binary tensor data extension (empty for a JSON request); every byte of it
// must belong to an input's `parameters.binary_data_size`.
InferRequest parse_infer_request(const nlohmann::json& body, const ModelSignature& model,
                                 std::string_view binary = {});
// `probabilities` holds request.images rows of model.classes.size().
nlohmann::json infer_response(const InferRequest& request, const ModelSignature& model,
                              const std::vector<float>& probabilities);
nlohmann::json error_body(const std::string& message);

}  // namespace tabby::serve
