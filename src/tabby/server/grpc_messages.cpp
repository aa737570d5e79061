#include "tabby/server/grpc_messages.h"

#include <fmt/format.h>

#include <cmath>

#include "tabby/serve/oip_binary.h"

namespace tabby::server {

namespace {

using nlohmann::json;

[[noreturn]] void refuse_message(const std::string& message) { throw serve::RequestError(400, message); }

// The datatype and shape of a metadata tensor, as the JSON metadata has them.
void add_tensors(const json& list, google::protobuf::RepeatedPtrField<inference::ModelMetadataResponse::TensorMetadata>* out) {
  for (const auto& t : list) {
    auto* m = out->Add();
    m->set_name(t["name"].get<std::string>());
    m->set_datatype(t["datatype"].get<std::string>());
    for (const auto& d : t["shape"]) m->add_shape(d.get<int64_t>());
  }
}

void read_fp32(serve::InferRequest& r, const inference::ModelInferRequest::InferInputTensor& input,
               const std::string* raw, const serve::ModelSignature& m) {
  const size_t count = static_cast<size_t>(r.images) * 3 * m.height * m.width;
  if (raw) {
    r.pixels = serve::fp32_from_raw(*raw, count, "raw_input_contents of the FP32 input");
    return;
  }
  const auto& values = input.contents().fp32_contents();
  if (static_cast<size_t>(values.size()) != count) {
    refuse_message(fmt::format("fp32_contents holds {} values; the input's shape says {}", values.size(), count));
  }
  for (const float v : values) {
    if (!std::isfinite(v)) refuse_message("fp32_contents must hold finite numbers");
  }
  r.pixels.assign(values.begin(), values.end());
}

void read_bytes(serve::InferRequest& r, const inference::ModelInferRequest::InferInputTensor& input,
                const std::string* raw) {
  const auto count = static_cast<size_t>(r.images);
  if (raw) {
    r.encoded = serve::bytes_from_raw(*raw, count, "raw_input_contents of the BYTES input");
    return;
  }
  const auto& values = input.contents().bytes_contents();
  if (static_cast<size_t>(values.size()) != count) {
    refuse_message(fmt::format("bytes_contents holds {} elements; the input's shape says {}", values.size(), count));
  }
  r.encoded.assign(values.begin(), values.end());
}

void read_outputs(serve::InferRequest& r, const inference::ModelInferRequest& request, const serve::ModelSignature& m) {
  if (request.outputs_size() > 1) refuse_message("`outputs` must list at most one output");
  if (request.outputs_size() == 0) return;
  const auto& out = request.outputs(0);
  if (!out.name().empty()) r.output_name = out.name();
  serve::check_output_name(r.output_name);
  const auto k = out.parameters().find("classification");
  if (k == out.parameters().end()) return;
  if (k->second.parameter_choice_case() != inference::InferParameter::kInt64Param) {
    refuse_message("`classification` must be a positive integer (int64_param)");
  }
  r.classification = serve::classification_of(k->second.int64_param(), m);
}

}  // namespace

serve::InferRequest infer_request_of(const inference::ModelInferRequest& request, const serve::ModelSignature& m) {
  serve::InferRequest r;
  r.id = request.id();
  if (request.inputs_size() != 1) refuse_message("`inputs` must list exactly one input tensor");
  const auto& input = request.inputs(0);
  r.input_name = input.name().empty() ? "images" : input.name();
  const std::string* raw = nullptr;
  if (request.raw_input_contents_size() > 0) {
    if (request.raw_input_contents_size() != request.inputs_size()) {
      refuse_message("raw_input_contents must hold one entry per input");
    }
    if (input.has_contents()) refuse_message("an input's data goes in raw_input_contents or in contents, not both");
    raw = &request.raw_input_contents(0);
  }
  const std::vector<int64_t> shape(input.shape().begin(), input.shape().end());
  if (input.datatype() == "FP32") {
    r.images = serve::fp32_image_count(shape, m);
    read_fp32(r, input, raw, m);
  } else if (input.datatype() == "BYTES") {
    r.images = serve::bytes_image_count(shape, m);
    read_bytes(r, input, raw);
  } else {
    refuse_message("datatype '" + input.datatype() + "': the model takes FP32 pixels or BYTES (encoded images)");
  }
  read_outputs(r, request, m);
  return r;
}

inference::ModelInferResponse infer_response_of(const serve::InferRequest& r, const serve::ModelSignature& m,
                                                const std::vector<float>& probabilities) {
  inference::ModelInferResponse out;
  out.set_model_name(m.name);
  out.set_model_version("1");
  out.set_id(r.id);
  auto* tensor = out.add_outputs();
  tensor->set_name(r.output_name);
  tensor->add_shape(r.images);
  if (r.classification > 0) {
    tensor->set_datatype("BYTES");
    tensor->add_shape(r.classification);
    // The strings of the JSON answer, so that both protocols word them alike.
    const json answer = serve::infer_response(r, m, probabilities);
    out.add_raw_output_contents(serve::raw_of_bytes(answer["outputs"][0]["data"].get<std::vector<std::string>>()));
  } else {
    tensor->set_datatype("FP32");
    tensor->add_shape(static_cast<int64_t>(m.classes.size()));
    out.add_raw_output_contents(serve::raw_of_fp32(probabilities));
  }
  return out;
}

inference::ServerMetadataResponse server_metadata_of(const std::string& version) {
  const json j = serve::server_metadata(version);
  inference::ServerMetadataResponse out;
  out.set_name(j["name"].get<std::string>());
  out.set_version(j["version"].get<std::string>());
  for (const auto& e : j["extensions"]) out.add_extensions(e.get<std::string>());
  return out;
}

inference::ModelMetadataResponse model_metadata_of(const serve::ModelSignature& model) {
  const json j = serve::model_metadata(model);
  inference::ModelMetadataResponse out;
  out.set_name(j["name"].get<std::string>());
  for (const auto& v : j["versions"]) out.add_versions(v.get<std::string>());
  out.set_platform(j["platform"].get<std::string>());
  add_tensors(j["inputs"], out.mutable_inputs());
  add_tensors(j["outputs"], out.mutable_outputs());
  return out;
}

}  // namespace tabby::server
