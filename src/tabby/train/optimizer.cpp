#include "tabby/train/optimizer.h"

#include <map>
#include <type_traits>
#include <sstream>

#include "tabby/util/error.h"

namespace tabby {

namespace {

template <typename Options>
std::vector<torch::optim::OptimizerParamGroup> groups_with(const std::vector<ParamGroup>& groups, const Options& base,
                                                           double lr) {
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (const auto& g : groups) {
    auto options = std::make_unique<Options>(base);
    options->lr(lr * g.lr_ratio);
    out.emplace_back(g.params, std::move(options));
  }
  return out;
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, double lr,
                                                        const std::vector<ParamGroup>& groups) {
  size_t count = 0;
  for (const auto& g : groups) count += g.params.size();
  if (count == 0) {
    throw Error("the model has no trainable parameters",
                "unfreeze the backbone or add a Dense layer after it");
  }
  const double wd = o.effective_weight_decay();
  switch (o.optimizer) {
    case OptimizerKind::adam: {
      const auto base = torch::optim::AdamOptions(lr).eps(1e-7).weight_decay(wd);
      return std::make_unique<torch::optim::Adam>(groups_with(groups, base, lr), base);
    }
    case OptimizerKind::adamw: {
      const auto base = torch::optim::AdamWOptions(lr).eps(1e-7).weight_decay(wd);
      return std::make_unique<torch::optim::AdamW>(groups_with(groups, base, lr), base);
    }
    case OptimizerKind::sgd:
      break;
  }
  const auto base = torch::optim::SGDOptions(lr).momentum(o.momentum).weight_decay(wd);
  return std::make_unique<torch::optim::SGD>(groups_with(groups, base, lr), base);
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, double lr,
                                                        const std::vector<torch::Tensor>& params) {
  return make_optimizer(o, lr, std::vector<ParamGroup>{{params, 1.0}});
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

void set_learning_rates(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& ratios) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * (i < ratios.size() ? ratios[i] : 1.0));
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

namespace {

namespace ser = torch::serialize;

// The key of a parameter's state: its tensor's address, as text in LibTorch
// 1.13 and as the pointer itself in 2.x.
template <typename Optimizer>  // a template, so only the branch for this LibTorch is compiled
auto state_key(Optimizer& optimizer, const torch::Tensor& p) {
  using Key = typename std::decay_t<decltype(optimizer.state())>::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;  // as c10::guts::to_string (gone in 2.x) wrote it
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

// LibTorch's own loader (Optimizer::load) matches the archive's states to the
// parameters through the names it gave them, the addresses of their tensors:
// LibTorch 1.13 wrote those in hex ("0x55d0..."), 2.x writes decimal and reads
// every hex name as 0, so a 1.13 checkpoint resumed under 2.x gave all
// parameters one state. Read here, the names are only compared as text, and
// the archive layout (state/<name>, param_groups/<i>/params/<k>, options) is
// the same in every LibTorch since 1.5.
template <typename ParamState, typename ParamOptions>
void load_by_position(torch::optim::Optimizer& optimizer, ser::InputArchive& archive) {
  ser::InputArchive states;
  archive.read("state", states);
  std::map<std::string, std::unique_ptr<ParamState>> saved;
  for (const auto& name : states.keys()) {
    ser::InputArchive one;
    states.read(name, one);
    auto state = std::make_unique<ParamState>();
    state->serialize(one);
    saved[name] = std::move(state);
  }
  ser::InputArchive groups;
  archive.read("param_groups", groups);
  torch::Tensor group_count;
  groups.read("param_groups/size", group_count);
  auto& current = optimizer.param_groups();
  TORCH_CHECK(group_count.item<int64_t>() == static_cast<int64_t>(current.size()),
              "it has ", group_count.item<int64_t>(), " parameter groups, the optimizer ", current.size());
  for (size_t i = 0; i < current.size(); ++i) {
    ser::InputArchive group;
    groups.read("param_groups/" + std::to_string(i), group);
    torch::Tensor count;
    group.read("params/size", count);
    const auto params = current[i].params();
    TORCH_CHECK(count.item<int64_t>() == static_cast<int64_t>(params.size()), "it has ", count.item<int64_t>(),
                " parameters, the model ", params.size());
    for (size_t k = 0; k < params.size(); ++k) {
      c10::IValue name;
      group.read("params/" + std::to_string(k), name);
      auto it = saved.find(name.toStringRef());
      if (it != saved.end()) optimizer.state()[state_key(optimizer, params[k])] = std::move(it->second);
    }
    ser::InputArchive options_archive;
    group.read("options", options_archive);
    ParamOptions options(0);
    options.serialize(options_archive);
    static_cast<ParamOptions&>(current[i].options()) = options;
  }
}

// Every moment buffer must have its parameter's shape: a mismatch would
// otherwise surface as a broadcasting error inside the first step.
void check_state_shapes(torch::optim::Optimizer& optimizer) {
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      auto it = optimizer.state().find(state_key(optimizer, p));
      if (it == optimizer.state().end()) continue;
      std::vector<torch::Tensor> buffers;
      if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(it->second.get())) {
        buffers.push_back(adam->exp_avg());
        buffers.push_back(adam->exp_avg_sq());
      } else if (const auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(it->second.get())) {
        buffers.push_back(adamw->exp_avg());
        buffers.push_back(adamw->exp_avg_sq());
      } else if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(it->second.get())) {
        buffers.push_back(sgd->momentum_buffer());
      }
      for (const auto& b : buffers) {
        TORCH_CHECK(!b.defined() || b.sizes() == p.sizes(), "a state of shape ", b.sizes(), " for a parameter of shape ",
                    p.sizes());
      }
    }
  }
}

}  // namespace

void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& bytes) {
  std::istringstream in(bytes);
  ser::InputArchive archive;
  try {
    archive.load_from(in);
    if (dynamic_cast<torch::optim::AdamW*>(&optimizer)) {
      load_by_position<torch::optim::AdamWParamState, torch::optim::AdamWOptions>(optimizer, archive);
    } else if (dynamic_cast<torch::optim::Adam*>(&optimizer)) {
      load_by_position<torch::optim::AdamParamState, torch::optim::AdamOptions>(optimizer, archive);
    } else if (dynamic_cast<torch::optim::SGD*>(&optimizer)) {
      load_by_position<torch::optim::SGDParamState, torch::optim::SGDOptions>(optimizer, archive);
    } else {
      optimizer.load(archive);
    }
    check_state_shapes(optimizer);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw Error("the checkpoint's optimizer state does not fit: " + msg.substr(0, msg.find('\n')),
                "the checkpoint was written by a different model or tabby version; start a new run");
  }
}

}  // namespace tabby
