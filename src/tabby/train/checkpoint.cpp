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
                      torch::optim::Optimizer& optimizer, const TrainerState& state) {
  RawTensorMap tensors;
  for (const auto& [name, tensor] : net.named_state()) tensors.emplace(kWeightPrefix + name, nn::to_raw(tensor));
  RawTensor opt;
  opt.dtype = DType::U8;
  opt.data = save_optimizer_state(optimizer);
  opt.shape = {static_cast<int64_t>(opt.data.size())};
  tensors.emplace(kOptimizerKey, std::move(opt));
  write_safetensors(file, tensors, {{kInfoKey, to_json(state).dump()}});
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
  const auto meta = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded()) throw Error("'" + file.string() + "' has damaged checkpoint metadata (not JSON)");
  try {
    data.state = trainer_state_from_json(meta, "'" + file.string() + "'");
  } catch (const Error& e) {
    throw Error(std::string("damaged checkpoint metadata: ") + e.what(), e.hint());
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
