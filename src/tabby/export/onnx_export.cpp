#include "tabby/export/onnx_export.h"

#include <onnx/onnx_pb.h>

#include <nlohmann/json.hpp>

#include <map>

#include "tabby/nn/graph_writer.h"
#include "tabby/run/run_files.h"
#include "tabby/inference/saved_run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"

namespace tabby {

namespace {

namespace fs = std::filesystem;

// The IR version each opset came with (onnx/helper.py's table).
int64_t ir_version_for(int opset) {
  if (opset <= 10) return 5;
  if (opset == 11) return 6;
  if (opset <= 14) return 7;
  return 8;
}

onnx::TensorProto_DataType onnx_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return onnx::TensorProto::FLOAT;
    case torch::kInt64: return onnx::TensorProto::INT64;
    default: throw Error("cannot export a tensor of type " + std::string(c10::toString(t.scalar_type())));
  }
}

class ProtoGraphWriter : public nn::GraphWriter {
 public:
  ProtoGraphWriter(onnx::GraphProto& graph, int opset) : graph_(graph), opset_(opset) {}

  int opset() const override { return opset_; }

  std::string constant(const std::string& hint, const torch::Tensor& value) override {
    const torch::Tensor t = value.detach().to(torch::kCPU).contiguous();
    onnx::TensorProto* init = graph_.add_initializer();
    const std::string name = unique(hint);
    init->set_name(name);
    init->set_data_type(onnx_type(t));
    for (int64_t d : t.sizes()) init->add_dims(d);
    init->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
    parameters_ += t.numel();
    return name;
  }

  nn::Value node(const std::string& op, const std::vector<std::string>& inputs, const std::vector<nn::Attr>& attrs,
                 const torch::Tensor& result) override {
    onnx::NodeProto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(unique(op));
    for (const auto& in : inputs) n->add_input(in);
    const std::string out = unique(op + "_out");
    n->add_output(out);
    for (const auto& a : attrs) set_attribute(*n->add_attribute(), a);
    return {out, result};
  }

  int64_t parameters() const { return parameters_; }

 private:
  std::string unique(const std::string& hint) { return hint + "_" + std::to_string(++count_[hint]); }

  static void set_attribute(onnx::AttributeProto& p, const nn::Attr& a) {
    p.set_name(a.name);
    if (const auto* i = std::get_if<int64_t>(&a.value)) {
      p.set_type(onnx::AttributeProto::INT);
      p.set_i(*i);
    } else if (const auto* f = std::get_if<float>(&a.value)) {
      p.set_type(onnx::AttributeProto::FLOAT);
      p.set_f(*f);
    } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a.value)) {
      p.set_type(onnx::AttributeProto::INTS);
      for (int64_t v : *is) p.add_ints(v);
    } else if (const auto* fs = std::get_if<std::vector<float>>(&a.value)) {
      p.set_type(onnx::AttributeProto::FLOATS);
      for (float v : *fs) p.add_floats(v);
    } else {
      p.set_type(onnx::AttributeProto::STRING);
      p.set_s(std::get<std::string>(a.value));
    }
  }

  onnx::GraphProto& graph_;
  int opset_;
  std::map<std::string, int> count_;
  int64_t parameters_ = 0;
};

void describe_tensor(onnx::ValueInfoProto& v, const std::string& name, const std::vector<int64_t>& fixed_dims) {
  v.set_name(name);
  auto* tensor = v.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tensor->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  for (int64_t d : fixed_dims) shape->add_dim()->set_dim_value(d);
}

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  auto* m = model.add_metadata_props();
  m->set_key(key);
  m->set_value(value);
}

// A run that can be exported: finished, with its kept weights.
LoadedRun load_finished_run(const fs::path& dir) {
  const RunRecord record = read_run_record(dir);
  if (!record.finished()) {
    throw Error("run '" + dir.string() + "' has not finished (" + enum_name(record.status) + "): nothing to export yet",
                "finish it with `tabby train --resume " + dir.string() + "`, then export");
  }
  return load_run(dir, torch::kCPU);
}

void check_job(const ExportJob& job) {
  if (job.format != "onnx") throw UsageError("--format " + job.format + ": tabby exports onnx", "use --format onnx");
  if (job.opset < kMinOnnxOpset || job.opset > kMaxOnnxOpset) {
    throw UsageError("--opset " + std::to_string(job.opset) + " is not one tabby writes",
                     "use an opset from " + std::to_string(kMinOnnxOpset) + " to " + std::to_string(kMaxOnnxOpset));
  }
}

}  // namespace

ExportOutcome run_export_job(const ExportJob& job) {
  check_job(job);
  LoadedRun run = load_finished_run(job.run);
  const RunSettings& s = run.settings();
  onnx::ModelProto model;
  model.set_ir_version(ir_version_for(job.opset));
  model.set_producer_name("tabby");
  model.set_producer_version(TABBY_VERSION);
  model.mutable_opset_import()->Add()->set_version(job.opset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(run.model.name);
  describe_tensor(*graph.add_input(), "images", {3, s.height, s.width});
  ProtoGraphWriter writer(graph, job.opset);
  const nn::Value images{"images", torch::zeros({1, 3, s.height, s.width})};
  const nn::Value probabilities = run.net->export_onnx(writer, images);
  // The graph's output keeps its public name.
  graph.mutable_node(graph.node_size() - 1)->set_output(0, "probabilities");
  describe_tensor(*graph.add_output(), "probabilities", {static_cast<int64_t>(s.class_names.size())});
  add_metadata(model, "classes", nlohmann::json(s.class_names).dump());
  add_metadata(model, "image_size", std::to_string(s.height) + "x" + std::to_string(s.width));
  add_metadata(model, "crop_to_aspect", s.crop_to_aspect ? "true" : "false");
  add_metadata(model, "model", run.model.name);
  add_metadata(model, "tabby_version", TABBY_VERSION);
  add_metadata(model, "input", "images: RGB pixel values 0-255, [batch, 3, H, W], resized to image_size");

  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("the ONNX model could not be serialised (larger than 2 GB?)");
  ExportOutcome out;
  out.file = job.out.empty() ? job.run / "model.onnx" : job.out;
  if (!out.file.parent_path().empty()) ensure_directory(out.file.parent_path());
  write_file_atomic(out.file, bytes);
  out.opset = job.opset;
  out.bytes = static_cast<int64_t>(bytes.size());
  out.nodes = graph.node_size();
  out.parameters = writer.parameters();
  log::infof("exported {} ({} nodes, opset {}) to {}", run.model.name, out.nodes, out.opset, out.file.string());
  return out;
}

}  // namespace tabby
