#include "tabby/serve/oip.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>

#include "tabby/report/base64.h"
#include "tabby/serve/oip_binary.h"

namespace tabby::serve {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw RequestError(400, message); }

std::vector<int64_t> shape_of(const json& input) {
  const auto it = input.find("shape");
  if (it == input.end() || !it->is_array() || it->empty()) bad("the input needs a `shape`, a list of sizes");
  std::vector<int64_t> shape;
  for (const auto& d : *it) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) bad("`shape` must hold sizes (integers >= 0)");
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

// Flattens nested lists of data row-major, as the protocol allows both forms.
void flatten(const json& data, std::vector<const json*>& out, int depth = 0) {
  if (depth > 8) bad("`data` is nested too deeply");
  for (const auto& v : data) {
    if (v.is_array()) {
      flatten(v, out, depth + 1);
    } else {
      out.push_back(&v);
    }
  }
}

std::vector<const json*> data_of(const json& input, size_t expected) {
  const auto it = input.find("data");
  if (it == input.end() || !it->is_array()) bad("the input needs its `data` as a list");
  std::vector<const json*> values;
  values.reserve(expected);
  flatten(*it, values);
  if (values.size() != expected) {
    bad(fmt::format("`data` holds {} values; its shape says {}", values.size(), expected));
  }
  return values;
}

// The raw bytes that follow a binary-extension request's JSON, handed out to
// the inputs in order, each its `parameters.binary_data_size`.
class BinaryTensors {
 public:
  explicit BinaryTensors(std::string_view bytes) : rest_(bytes) {}

  // The input's raw bytes, or nullopt when its data is JSON `data`.
  std::optional<std::string_view> take(const json& input, const std::string& what) {
    const auto params = input.find("parameters");
    if (params == input.end()) return std::nullopt;
    if (!params->is_object()) bad(what + ": `parameters` must be an object");
    const auto size = params->find("binary_data_size");
    if (size == params->end()) return std::nullopt;
    if (!size->is_number_integer() || size->get<int64_t>() < 0) {
      bad(what + ": `binary_data_size` must be a number of bytes (an integer >= 0)");
    }
    if (input.contains("data")) bad(what + " has both `data` and `binary_data_size`: its data is one or the other");
    const auto n = static_cast<uint64_t>(size->get<int64_t>());
    if (n > rest_.size()) {
      bad(fmt::format("{}: `binary_data_size` is {}, but only {} bytes of binary data follow the JSON{}", what, n,
                      rest_.size(),
                      rest_.empty() ? " (binary data needs the Inference-Header-Content-Length header)" : ""));
    }
    const std::string_view raw = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return raw;
  }
  // Every byte must belong to an input: a stray one is a client's mistake.
  void expect_all_taken() const {
    if (!rest_.empty()) bad(fmt::format("{} bytes of binary data follow the inputs' `binary_data_size`s", rest_.size()));
  }

 private:
  std::string_view rest_;
};

void check_image_count(int64_t images, const ModelSignature& m) {
  if (images < 1) bad("the request holds no image");
  if (images > m.max_images) bad(fmt::format("a request may hold at most {} images", m.max_images));
}

void parse_fp32(InferRequest& r, const json& input, const std::vector<int64_t>& shape, const ModelSignature& m,
                BinaryTensors& binary) {
  r.images = fp32_image_count(shape, m);
  const size_t n = static_cast<size_t>(r.images) * 3 * m.height * m.width;
  if (const auto raw = binary.take(input, "the FP32 input")) {
    r.pixels = fp32_from_raw(*raw, n, "the FP32 input");
    return;
  }
  r.pixels.reserve(n);
  for (const json* v : data_of(input, n)) {
    if (!v->is_number()) bad("FP32 `data` must hold numbers");
    const double x = v->get<double>();
    if (!std::isfinite(x)) bad("FP32 `data` must hold finite numbers");
    r.pixels.push_back(static_cast<float>(x));
  }
}

void parse_bytes(InferRequest& r, const json& input, const std::vector<int64_t>& shape, const ModelSignature& m,
                 BinaryTensors& binary) {
  r.images = bytes_image_count(shape, m);
  if (const auto raw = binary.take(input, "the BYTES input")) {
    r.encoded = bytes_from_raw(*raw, static_cast<size_t>(r.images), "the BYTES input");
    return;
  }
  for (const json* v : data_of(input, static_cast<size_t>(r.images))) {
    if (!v->is_string()) bad("BYTES `data` must hold base64 strings of encoded images");
    auto bytes = report::base64_decode(v->get<std::string>());
    if (!bytes) bad("BYTES `data` holds a string that is not base64");
    r.encoded.push_back(std::move(*bytes));
  }
}

// json::value() would throw its own type_error (a 500) for a name that is a number.
std::string text_field(const json& object, const char* key, const std::string& absent) {
  const auto it = object.find(key);
  if (it == object.end()) return absent;
  if (!it->is_string()) bad(fmt::format("`{}` must be a string", key));
  return it->get<std::string>();
}

// A boolean parameter of `params` (absent: false).
bool flag_of(const json& params, const char* key) {
  const auto it = params.find(key);
  if (it == params.end()) return false;
  if (!it->is_boolean()) bad(fmt::format("`{}` must be true or false", key));
  return it->get<bool>();
}

void parse_outputs(InferRequest& r, const json& body, const ModelSignature& m) {
  const auto it = body.find("outputs");
  if (it == body.end()) return;
  if (!it->is_array() || it->size() > 1) bad("`outputs` must list at most one output");
  if (it->empty()) return;
  const json& out = it->front();
  if (!out.is_object()) bad("an output must be an object");
  r.output_name = text_field(out, "name", "probabilities");
  check_output_name(r.output_name);
  const json params = out.value("parameters", json::object());
  if (!params.is_object()) bad("an output's `parameters` must be an object");
  // The output's own choice wins over the request's `binary_data_output`.
  if (params.contains("binary_data")) r.binary_output = flag_of(params, "binary_data");
  if (params.contains("classification")) {
    const json& k = params["classification"];
    if (!k.is_number_integer()) bad("`classification` must be a positive integer");
    r.classification = classification_of(k.get<int64_t>(), m);
  }
}

}  // namespace

int64_t fp32_image_count(const std::vector<int64_t>& shape, const ModelSignature& m) {
  if (shape.size() != 4 || shape[0] < 0 || shape[1] != 3 || shape[2] != m.height || shape[3] != m.width) {
    bad(fmt::format("FP32 input must have shape [N, 3, {}, {}] (RGB pixel values 0-255 at the model's size)",
                    m.height, m.width));
  }
  check_image_count(shape[0], m);
  return shape[0];
}

int64_t bytes_image_count(const std::vector<int64_t>& shape, const ModelSignature& m) {
  if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1) || shape[0] < 0) {
    bad("BYTES input must have shape [N] or [N, 1]");
  }
  check_image_count(shape[0], m);
  return shape[0];
}

int classification_of(int64_t top, const ModelSignature& m) {
  if (top < 1) bad("`classification` must be a positive integer");
  return static_cast<int>(std::min<int64_t>(top, static_cast<int64_t>(m.classes.size())));
}

void check_output_name(const std::string& name) {
  if (name != "probabilities") bad("the model's only output is \"probabilities\"");
}

json server_metadata(const std::string& version) {
  return {{"name", "tabby"}, {"version", version}, {"extensions", {"classification", "binary_tensor_data"}}};
}

json model_metadata(const ModelSignature& m) {
  return {{"name", m.name},
          {"versions", {"1"}},
          {"platform", "tabby_libtorch"},
          {"inputs",
           {{{"name", "images"}, {"datatype", "FP32"}, {"shape", {-1, 3, m.height, m.width}}},
            {{"name", "image_bytes"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
          {"outputs",
           {{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<int64_t>(m.classes.size())}}}}},
          {"parameters", {{"classes", m.classes}}}};
}

InferRequest parse_infer_request(const json& body, const ModelSignature& m, std::string_view binary) {
  if (!body.is_object()) bad("the request body must be a JSON object");
  InferRequest r;
  if (body.contains("id")) {
    if (!body["id"].is_string()) bad("`id` must be a string");
    r.id = body["id"].get<std::string>();
  }
  const auto inputs = body.find("inputs");
  if (inputs == body.end() || !inputs->is_array() || inputs->size() != 1 || !inputs->front().is_object()) {
    bad("`inputs` must list exactly one input tensor");
  }
  const json& input = inputs->front();
  r.input_name = text_field(input, "name", "images");
  const std::string type = text_field(input, "datatype", "");
  const std::vector<int64_t> shape = shape_of(input);
  BinaryTensors tensors(binary);
  if (type == "FP32") {
    parse_fp32(r, input, shape, m, tensors);
  } else if (type == "BYTES") {
    parse_bytes(r, input, shape, m, tensors);
  } else {
    bad("datatype '" + type + "': the model takes FP32 pixels or BYTES (encoded images)");
  }
  tensors.expect_all_taken();
  if (const auto params = body.find("parameters"); params != body.end()) {
    if (!params->is_object()) bad("the request's `parameters` must be an object");
    r.binary_output = flag_of(*params, "binary_data_output");
  }
  parse_outputs(r, body, m);
  return r;
}

json infer_response(const InferRequest& r, const ModelSignature& m, const std::vector<float>& probabilities) {
  const auto classes = static_cast<int64_t>(m.classes.size());
  json output = {{"name", r.output_name}};
  if (r.classification > 0) {
    json data = json::array();
    for (int64_t i = 0; i < r.images; ++i) {
      const float* row = probabilities.data() + i * classes;
      std::vector<int64_t> order(static_cast<size_t>(classes));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return row[a] > row[b]; });
      for (int k = 0; k < r.classification; ++k) {
        const int64_t c = order[static_cast<size_t>(k)];
        data.push_back(fmt::format("{:.6f}:{}:{}", row[c], c, m.classes[static_cast<size_t>(c)]));
      }
    }
    output["datatype"] = "BYTES";
    output["shape"] = {r.images, r.classification};
    output["data"] = data;
  } else {
    output["datatype"] = "FP32";
    output["shape"] = {r.images, classes};
    output["data"] = probabilities;
  }
  json out = {{"model_name", m.name}, {"model_version", "1"}, {"outputs", {output}}};
  if (!r.id.empty()) out["id"] = r.id;
  return out;
}

json error_body(const std::string& message) { return {{"error", message}}; }

}  // namespace tabby::serve
