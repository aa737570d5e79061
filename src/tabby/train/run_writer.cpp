#include "tabby/train/run_writer.h"

#include "tabby/nn/state_dict.h"
#include "tabby/run/run_files.h"
#include "tabby/run/run_record.h"
#include "tabby/train/run.h"
#include "tabby/util/fs.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

RunWriter::RunWriter(std::filesystem::path run_dir) : dir_(std::move(run_dir)) {}

CheckpointData RunWriter::read_checkpoint() const { return tabby::read_checkpoint(dir_ / run_files::kCheckpoint); }

nn::TensorMap RunWriter::read_best_weights() const {
  std::error_code ec;
  if (!writes() || !fs::is_regular_file(dir_ / run_files::kBest, ec)) return {};
  return nn::to_torch(read_safetensors(dir_ / run_files::kBest).tensors);
}

CheckpointData RunWriter::read_checkpoint(Collective& group) const {
  std::string bytes;
  if (group.is_main()) {
    read_checkpoint();  // a missing or damaged checkpoint is rank 0's error, with its message
    bytes = read_file(dir_ / run_files::kCheckpoint);
  }
  bytes = group.broadcast_bytes(bytes);
  return parse_checkpoint(bytes, "the checkpoint of rank 0");
}

nn::TensorMap RunWriter::read_best_weights(Collective& group) const {
  std::error_code ec;
  std::string bytes;
  if (group.is_main() && writes() && fs::is_regular_file(dir_ / run_files::kBest, ec)) {
    bytes = read_file(dir_ / run_files::kBest);
  }
  bytes = group.broadcast_bytes(bytes);
  if (bytes.empty()) return {};
  return nn::to_torch(parse_safetensors(bytes, "the best weights of rank 0").tensors);
}

void RunWriter::epoch_finished(const nn::NetworkImpl& net, torch::optim::Optimizer& optimizer,
                               const TrainerState& state, bool improved,
                               const nn::TensorMap* averaged_weights) const {
  if (!writes()) return;
  if (improved) {
    const std::map<std::string, std::string> meta = {{"epoch", std::to_string(state.epochs_done)}};
    if (averaged_weights) save_weights(dir_ / run_files::kBest, *averaged_weights, meta);
    else save_weights(dir_ / run_files::kBest, net, meta);
  }
  write_file_atomic(dir_ / run_files::kHistory, history_to_csv(state.history));
  write_checkpoint(dir_ / run_files::kCheckpoint, net, optimizer, state, averaged_weights);
  update_run_record(dir_, [&](RunRecord& r) {
    r.status = RunStatus::running;
    r.epochs_completed = state.epochs_done;
  });
}

void RunWriter::save_kept_weights(const nn::NetworkImpl& net, KeepWeights kept) const {
  if (writes()) save_weights(dir_ / run_files::kWeights, net, {{"kept", enum_name(kept)}});
}

}  // namespace tabby
