#include "tabby/serve/oip_tensor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

// Raw contents are little-endian on the wire; they are copied as they lie in memory.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw tensor contents are read as little-endian: this host is not"
#endif

namespace tabby::serve {

namespace {

[[noreturn]] void refuse(const std::string& message) { throw RequestError(400, message); }

}  // namespace

int64_t fp32_images(const std::vector<int64_t>& shape, const ModelSignature& m) {
  if (shape.size() != 4 || shape[0] < 0 || shape[1] != 3 || shape[2] != m.height || shape[3] != m.width) {
    refuse(fmt::format("FP32 input must have shape [N, 3, {}, {}] (RGB pixel values 0-255 at the model's size)",
                       m.height, m.width));
  }
  return shape[0];
}

int64_t bytes_images(const std::vector<int64_t>& shape) {
  if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1) || shape[0] < 0) {
    refuse("BYTES input must have shape [N] or [N, 1]");
  }
  return shape[0];
}

void check_image_count(int64_t images, const ModelSignature& m) {
  if (images < 1) refuse("the request holds no image");
  if (images > m.max_images) refuse(fmt::format("a request may hold at most {} images", m.max_images));
}

int classification_count(int64_t k, const ModelSignature& m) {
  if (k < 1) refuse("`classification` must be a positive integer");
  return static_cast<int>(std::min<int64_t>(k, static_cast<int64_t>(m.classes.size())));
}

std::vector<float> fp32_from_raw(const std::string& raw, size_t count) {
  if (raw.size() != count * sizeof(float)) {
    refuse(fmt::format("the raw FP32 contents hold {} bytes; the input's shape says {} ({} values)", raw.size(),
                       count * sizeof(float), count));
  }
  std::vector<float> values(count);
  std::memcpy(values.data(), raw.data(), raw.size());
  check_finite(values);
  return values;
}

std::vector<std::string> bytes_from_raw(const std::string& raw, size_t count) {
  std::vector<std::string> elements;
  size_t at = 0;
  while (at < raw.size()) {
    uint32_t length = 0;
    if (raw.size() - at < sizeof(length)) refuse("the raw BYTES contents end inside an element's length");
    std::memcpy(&length, raw.data() + at, sizeof(length));
    at += sizeof(length);
    if (raw.size() - at < length) {
      refuse(fmt::format("the raw BYTES contents end inside element {} ({} of its {} bytes there)", elements.size(),
                         raw.size() - at, length));
    }
    elements.emplace_back(raw, at, length);
    at += length;
  }
  if (elements.size() != count) {
    refuse(fmt::format("the raw BYTES contents hold {} elements; the input's shape says {}", elements.size(), count));
  }
  return elements;
}

std::string raw_of_fp32(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

std::string raw_of_bytes(const std::vector<std::string>& elements) {
  std::string raw;
  for (const auto& e : elements) {
    const auto length = static_cast<uint32_t>(e.size());
    raw.append(reinterpret_cast<const char*>(&length), sizeof(length));
    raw += e;
  }
  return raw;
}

void check_finite(const std::vector<float>& pixels) {
  for (const float x : pixels) {
    if (!std::isfinite(x)) refuse("FP32 input must hold finite pixel values");
  }
}

std::vector<std::string> classification_elements(const InferRequest& r, const ModelSignature& m,
                                                 const std::vector<float>& probabilities) {
  const auto classes = static_cast<int64_t>(m.classes.size());
  std::vector<std::string> out;
  for (int64_t i = 0; i < r.images; ++i) {
    const float* row = probabilities.data() + i * classes;
    std::vector<int64_t> order(static_cast<size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    for (int k = 0; k < r.classification; ++k) {
      const int64_t c = order[static_cast<size_t>(k)];
      out.push_back(fmt::format("{:.6f}:{}:{}", row[c], c, m.classes[static_cast<size_t>(c)]));
    }
  }
  return out;
}

}  // namespace tabby::serve
