#include "tabby/serve/oip.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tabby/report/base64.h"

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

void parse_fp32(InferRequest& r, const json& input, const std::vector<int64_t>& shape, const ModelSignature& m) {
  if (shape.size() != 4 || shape[1] != 3 || shape[2] != m.height || shape[3] != m.width) {
    bad(fmt::format("FP32 input must have shape [N, 3, {}, {}] (RGB pixel values 0-255 at the model's size)",
                    m.height, m.width));
  }
  r.images = shape[0];
  const size_t n = static_cast<size_t>(r.images) * 3 * m.height * m.width;
  r.pixels.reserve(n);
  for (const json* v : data_of(input, n)) {
    if (!v->is_number()) bad("FP32 `data` must hold numbers");
    const double x = v->get<double>();
    if (!std::isfinite(x)) bad("FP32 `data` must hold finite numbers");
    r.pixels.push_back(static_cast<float>(x));
  }
}

void parse_bytes(InferRequest& r, const json& input, const std::vector<int64_t>& shape) {
  const int64_t product = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
  if (shape.size() > 2 || (shape.size() == 2 && shape[1] != 1)) bad("BYTES input must have shape [N] or [N, 1]");
  r.images = product;
  for (const json* v : data_of(input, static_cast<size_t>(product))) {
    if (!v->is_string()) bad("BYTES `data` must hold base64 strings of encoded images");
    auto bytes = report::base64_decode(v->get<std::string>());
    if (!bytes) bad("BYTES `data` holds a string that is not base64");
    r.encoded.push_back(std::move(*bytes));
  }
}

void parse_outputs(InferRequest& r, const json& body, const ModelSignature& m) {
  const auto it = body.find("outputs");
  if (it == body.end()) return;
  if (!it->is_array() || it->size() > 1) bad("`outputs` must list at most one output");
  if (it->empty()) return;
  const json& out = it->front();
  if (!out.is_object()) bad("an output must be an object");
  r.output_name = out.value("name", std::string("probabilities"));
  if (r.output_name != "probabilities") bad("the model's only output is \"probabilities\"");
  const json params = out.value("parameters", json::object());
  if (params.contains("classification")) {
    const json& k = params["classification"];
    if (!k.is_number_integer() || k.get<int64_t>() < 1) bad("`classification` must be a positive integer");
    r.classification = static_cast<int>(std::min<int64_t>(k.get<int64_t>(), static_cast<int64_t>(m.classes.size())));
  }
}

}  // namespace

json server_metadata(const std::string& version) {
  return {{"name", "tabby"}, {"version", version}, {"extensions", {"classification"}}};
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

InferRequest parse_infer_request(const json& body, const ModelSignature& m) {
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
  r.input_name = input.value("name", std::string("images"));
  const std::string type = input.value("datatype", std::string());
  const std::vector<int64_t> shape = shape_of(input);
  if (type == "FP32") {
    parse_fp32(r, input, shape, m);
  } else if (type == "BYTES") {
    parse_bytes(r, input, shape);
  } else {
    bad("datatype '" + type + "': the model takes FP32 pixels or BYTES (encoded images)");
  }
  if (r.images < 1) bad("the request holds no image");
  if (r.images > m.max_images) bad(fmt::format("a request may hold at most {} images", m.max_images));
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
