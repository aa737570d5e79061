#include "tabby/train/checkpoint.h"

#include "tabby/nn/state_dict.h"
#include "tabby/train/optimizer.h"
#include "tabby/util/error.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

namespace {
const char* kWeightPrefix = "model/";
const char* kAverageKeyPrefix = "ema/";
const char* kOptimizerKey = "optimizer/state";
const char* kInfoKey = "tabby_checkpoint";
}  // namespace

void write_checkpoint(const std::filesystem::path& file, const nn::NetworkImpl& net,
                      torch::optim::Optimizer& optimizer, const TrainerState& state,
                      const nn::TensorMap* averaged_weights) {
  RawTensorMap tensors;
  for (const auto& [name, tensor] : net.named_state()) tensors.emplace(kWeightPrefix + name, nn::to_raw(tensor));
  if (averaged_weights) {
    for (const auto& [name, tensor] : *averaged_weights) tensors.emplace(kAverageKeyPrefix + name, nn::to_raw(tensor));
  }
  RawTensor opt;
  opt.dtype = DType::U8;
  opt.data = save_optimizer_state(optimizer);
  opt.shape = {static_cast<int64_t>(opt.data.size())};
  tensors.emplace(kOptimizerKey, std::move(opt));
  write_safetensors(file, tensors, {{kInfoKey, to_json(state).dump()}});
}

namespace {

CheckpointData checkpoint_of(SafetensorsFile st, const std::string& source) {
  auto it = st.metadata.find(kInfoKey);
  if (it == st.metadata.end()) throw Error(source + " is not a tabby checkpoint");
  CheckpointData data;
  const auto meta = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (meta.is_discarded()) throw Error(source + " has damaged checkpoint metadata (not JSON)");
  try {
    data.state = trainer_state_from_json(meta, source);
  } catch (const Error& e) {
    throw Error(std::string("damaged checkpoint metadata: ") + e.what(), e.hint());
  }
  const std::string prefix = kWeightPrefix, average_prefix = kAverageKeyPrefix;
  for (auto& [name, raw] : st.tensors) {
    if (name == kOptimizerKey) {
      data.optimizer_state = raw.data;
    } else if (name.rfind(prefix, 0) == 0) {
      data.weights.emplace(name.substr(prefix.size()), nn::to_torch(raw));
    } else if (name.rfind(average_prefix, 0) == 0) {
      data.averaged_weights.emplace(name.substr(average_prefix.size()), nn::to_torch(raw));
    }
  }
  if (data.optimizer_state.empty()) throw Error(source + " lacks the optimizer state");
  return data;
}

}  // namespace

CheckpointData read_checkpoint(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    throw Error("no checkpoint at '" + file.string() + "'",
                "the run has not finished an epoch yet; start it again without --resume");
  }
  return checkpoint_of(read_safetensors(file), "'" + file.string() + "'");
}

CheckpointData parse_checkpoint(const std::string& bytes, const std::string& source) {
  return checkpoint_of(parse_safetensors(bytes, source), source);
}

}  // namespace tabby
