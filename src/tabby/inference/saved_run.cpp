#include "tabby/inference/saved_run.h"

#include "tabby/nn/state_dict.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

ModelSpec read_run_model(const fs::path& dir) {
  if (!is_run_dir(dir)) read_run_record(dir);  // the clear "not a run" error
  return load_model_file(dir / run_files::kModel);
}

void save_weights(const fs::path& file, const nn::TensorMap& weights, const std::map<std::string, std::string>& metadata) {
  RawTensorMap raw;
  for (const auto& [name, tensor] : weights) raw.emplace(name, nn::to_raw(tensor));
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "tabby";
  write_safetensors(file, raw, meta);
}

void save_weights(const fs::path& file, const nn::NetworkImpl& net, const std::map<std::string, std::string>& metadata) {
  std::map<std::string, std::string> meta = metadata;
  meta["model"] = net.spec().name;
  save_weights(file, net.named_state(), meta);
}

void load_weights(const fs::path& file, nn::NetworkImpl& net) {
  SafetensorsFile st;
  try {
    st = read_safetensors(file);
  } catch (const Error& e) {
    // The reader's own hint speaks of downloaded files; these are the run's.
    throw Error(e.what(), "the run's weights are damaged: restore " + file.filename().string() +
                              " from a copy of the run folder, or train the run again");
  }
  try {
    net.load_named_state(nn::to_torch(st.tensors), /*strict=*/true);
  } catch (const Error& e) {
    throw Error(file.string() + ": " + e.what(), "the weights belong to another model; check the run folder");
  }
}

fs::path require_weights_file(const fs::path& dir, const RunRecord& record, const std::string& weights_file) {
  const fs::path weights = dir / weights_file;
  std::error_code ec;
  if (fs::is_regular_file(weights, ec)) return weights;
  if (record.finished()) {
    throw Error("run '" + dir.string() + "' has finished but its " + weights_file + " is missing",
                "restore the file from a copy of the run folder, or train the run again");
  }
  throw Error("run '" + dir.string() + "' has no " + weights_file + " yet",
              "the training did not finish; `tabby train --resume " + dir.string() + "` continues it");
}

LoadedRun load_run(const fs::path& dir, const torch::Device& device, const std::string& weights_file) {
  LoadedRun run;
  run.dir = dir;
  run.record = read_run_record(dir);
  run.model = read_run_model(dir);
  const fs::path weights = require_weights_file(dir, run.record, weights_file);
  const RunSettings& s = run.settings();
  run.net = nn::Network(run.model, static_cast<int64_t>(s.class_names.size()), s.height, s.width);
  load_weights(weights, *run.net);
  run.net->to(device);
  run.net->set_channels_last(s.train.uses_channels_last());
  run.net->eval();
  return run;
}

}  // namespace tabby
