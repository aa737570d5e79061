#include "tabby/train/optimizer.h"

#include <sstream>

#include "tabby/util/error.h"

namespace tabby {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, double lr,
                                                        const std::vector<torch::Tensor>& params) {
  if (params.empty()) {
    throw Error("the model has no trainable parameters",
                "unfreeze the backbone or add a Dense layer after it");
  }
  const double wd = o.effective_weight_decay();
  switch (o.optimizer) {
    case OptimizerKind::adam:
      return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr).eps(1e-7).weight_decay(wd));
    case OptimizerKind::adamw:
      return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(lr).eps(1e-7).weight_decay(wd));
    case OptimizerKind::sgd:
      break;
  }
  return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(lr).momentum(o.momentum).weight_decay(wd));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

double learning_rate(const torch::optim::Optimizer& optimizer) {
  return optimizer.param_groups().front().options().get_lr();
}

std::string save_optimizer_state(torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& bytes) {
  std::istringstream in(bytes);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(in);
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw Error("the checkpoint's optimizer state does not fit: " + msg.substr(0, msg.find('\n')),
                "the checkpoint was written by a different model or tabby version; start a new run");
  }
}

}  // namespace tabby
