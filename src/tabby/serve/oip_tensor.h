// The Open Inference Protocol's checks and encodings of one tensor, apart
// from the message that carries it: JSON (oip.cpp) and protobuf (gRPC,
// server/grpc_messages.cpp) requests are held to the same rules and get the
// same errors, and raw tensor bytes are read and written in one place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tabby/serve/oip.h"

namespace tabby::serve {

// The images of an FP32 input: shape [N, 3, H, W] at the model's size.
// RequestError(400) for any other shape.
int64_t fp32_images(const std::vector<int64_t>& shape, const ModelSignature& model);
// The images of a BYTES input (one encoded image per element): shape [N] or [N, 1].
int64_t bytes_images(const std::vector<int64_t>& shape);
// RequestError(400) unless 1 <= images <= model.max_images.
void check_image_count(int64_t images, const ModelSignature& model);
// The classification extension's K, at most the model's classes; RequestError(400) below 1.
int classification_count(int64_t k, const ModelSignature& model);

// Raw tensor contents (Triton's binary data, gRPC's raw_*_contents):
// FP32 as little-endian floats, BYTES as elements each preceded by its
// length (4 bytes, little-endian). RequestError(400) for a size that does
// not match `count` elements, or a non-finite pixel.
std::vector<float> fp32_from_raw(const std::string& raw, size_t count);
std::vector<std::string> bytes_from_raw(const std::string& raw, size_t count);
std::string raw_of_fp32(const std::vector<float>& values);
std::string raw_of_bytes(const std::vector<std::string>& elements);
// RequestError(400) for a NaN or infinite pixel value.
void check_finite(const std::vector<float>& pixels);

// The classification extension's elements, request.images x request.classification
// strings "probability:index:label", each image's best class first.
std::vector<std::string> classification_elements(const InferRequest& request, const ModelSignature& model,
                                                 const std::vector<float>& probabilities);

}  // namespace tabby::serve
