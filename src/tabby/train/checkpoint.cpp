#include "tabby/train/checkpoint.h"

#include "tabby/nn/state_dict.h"
#include "tabby/train/optimizer.h"
#include "tabby/util/error.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

namespace {
const char* kWeightPrefix = "model/";
const char* kOptimizerKey = "optimizer/state";
const char* kInfoKey = "tabby_checkpoint";
}  // namespace

void write_checkpoint(const std::filesystem::path& file, const nn::NetworkImpl& net,
                      torch::optim::Optimizer& optimizer, const CheckpointInfo& info) {
  RawTensorMap tensors;
  for (const auto& [name, tensor] : net.named_state()) tensors.emplace(kWeightPrefix + name, nn::to_raw(tensor));
  RawTensor opt;
  opt.dtype = DType::U8;
  opt.data = save_optimizer_state(optimizer);
  opt.shape = {static_cast<int64_t>(opt.data.size())};
  tensors.emplace(kOptimizerKey, std::move(opt));
  nlohmann::json meta = {{"epochs_done", info.epochs_done},
                         {"phase", info.phase},
                         {"history", history_to_json(info.history)},
                         {"state", info.state}};
  write_safetensors(file, tensors, {{kInfoKey, meta.dump()}});
}

CheckpointData read_checkpoint(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error("no checkpoint at '" + file.string() + "'",
                "the run has not finished an epoch yet; start it again without --resume");
  }
  SafetensorsFile st = read_safetensors(file);
  auto it = st.metadata.find(kInfoKey);
  if (it == st.metadata.end()) throw Error("'" + file.string() + "' is not a tabby checkpoint");
  CheckpointData data;
  try {
    auto meta = nlohmann::json::parse(it->second);
    data.epochs_done = meta.at("epochs_done").get<int>();
    data.phase = meta.at("phase").get<std::string>();
    data.history = history_from_json(meta.at("history"));
    data.state = meta.at("state");
  } catch (const nlohmann::json::exception& e) {
    throw Error("'" + file.string() + "' has damaged checkpoint metadata: " + e.what());
  }
  const std::string prefix = kWeightPrefix;
  for (auto& [name, raw] : st.tensors) {
    if (name == kOptimizerKey) {
      data.optimizer_state = raw.data;
    } else if (name.rfind(prefix, 0) == 0) {
      data.weights.emplace(name.substr(prefix.size()), nn::to_torch(raw));
    }
  }
  if (data.optimizer_state.empty()) throw Error("'" + file.string() + "' lacks the optimizer state");
  return data;
}

}  // namespace tabby
