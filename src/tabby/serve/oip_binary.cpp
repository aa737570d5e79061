#include "tabby/serve/oip_binary.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>

namespace tabby::serve {

namespace {

using nlohmann::json;

[[noreturn]] void refuse_binary(const std::string& message) { throw RequestError(400, message); }

// Little-endian whatever the host, as the extension fixes the byte order.
uint32_t read_u32_le(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

void append_u32_le(std::string& out, uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

}  // namespace

std::vector<float> fp32_from_raw(std::string_view raw, size_t count, const std::string& what) {
  if (raw.size() % 4 != 0 || raw.size() / 4 != count) {
    refuse_binary(fmt::format("{} holds {} bytes of binary data; its shape says {} FP32 values ({} bytes)", what,
                              raw.size(), count, count * 4));
  }
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) {
    const uint32_t bits = read_u32_le(raw.data() + 4 * i);
    float v;
    std::memcpy(&v, &bits, sizeof v);
    if (!std::isfinite(v)) refuse_binary(what + " must hold finite numbers");
    values[i] = v;
  }
  return values;
}

std::vector<std::string> bytes_from_raw(std::string_view raw, size_t count, const std::string& what) {
  // Each element takes at least its 4-byte length: a count the bytes cannot
  // hold is refused before anything is reserved for it.
  if (count > raw.size() / 4) {
    refuse_binary(fmt::format("{} holds {} bytes of binary data, too few for {} BYTES elements", what, raw.size(), count));
  }
  std::vector<std::string> elements;
  elements.reserve(count);
  size_t at = 0;
  for (size_t i = 0; i < count; ++i) {
    if (raw.size() - at < 4) refuse_binary(fmt::format("{}: the length of BYTES element {} is cut off", what, i));
    const uint32_t length = read_u32_le(raw.data() + at);
    at += 4;
    if (length > raw.size() - at) {
      refuse_binary(fmt::format("{}: BYTES element {} claims {} bytes; {} remain", what, i, length, raw.size() - at));
    }
    elements.emplace_back(raw.substr(at, length));
    at += length;
  }
  if (at != raw.size()) {
    refuse_binary(fmt::format("{}: {} bytes follow its {} BYTES elements", what, raw.size() - at, count));
  }
  return elements;
}

std::string raw_of_fp32(const std::vector<float>& values) {
  std::string out;
  out.reserve(values.size() * 4);
  for (const float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    append_u32_le(out, bits);
  }
  return out;
}

std::string raw_of_bytes(const std::vector<std::string>& elements) {
  std::string out;
  for (const auto& e : elements) {
    append_u32_le(out, static_cast<uint32_t>(e.size()));
    out += e;
  }
  return out;
}

InferRequest parse_binary_infer_request(std::string_view body, const std::string& header_length,
                                        const ModelSignature& model) {
  // Digits only: std::stoull would take "+12", " 12" or "12abc".
  const bool digits = !header_length.empty() && header_length.size() <= 19 &&
                      header_length.find_first_not_of("0123456789") == std::string::npos;
  if (!digits) refuse_binary("Inference-Header-Content-Length must be a number of bytes, not '" + header_length + "'");
  const uint64_t length = std::stoull(header_length);
  if (length > body.size()) {
    refuse_binary(fmt::format("Inference-Header-Content-Length is {}, but the body holds only {} bytes", length,
                              body.size()));
  }
  const json header = json::parse(body.substr(0, length), nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) {
    refuse_binary(fmt::format("the first {} bytes of the body (Inference-Header-Content-Length) are not valid JSON",
                              length));
  }
  return parse_infer_request(header, model, body.substr(length));
}

EncodedInferResponse encode_infer_response(const InferRequest& request, const ModelSignature& model,
                                           const std::vector<float>& probabilities) {
  json head = infer_response(request, model, probabilities);
  if (!request.binary_output) return {head.dump(), std::nullopt};
  json& output = head["outputs"][0];
  const std::string raw = request.classification > 0 ? raw_of_bytes(output["data"].get<std::vector<std::string>>())
                                                     : raw_of_fp32(probabilities);
  output.erase("data");
  output["parameters"] = {{"binary_data_size", raw.size()}};
  EncodedInferResponse out{head.dump(), std::nullopt};
  out.header_length = out.body.size();
  out.body += raw;
  return out;
}

}  // namespace tabby::serve
