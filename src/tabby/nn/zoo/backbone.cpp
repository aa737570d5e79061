// The backbone base class (freezing, inference modes), the arch registry and
// state-dict loading for backbones; see backbone.h.
#include "tabby/nn/zoo/backbone.h"

#include "tabby/config/backbone_table.h"
#include "tabby/nn/zoo/archs.h"
#include "tabby/util/error.h"


namespace tabby::nn {

bool lies_under(const std::string& name, const std::string& prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return false;
  return name.size() == prefix.size() || name[prefix.size()] == '.';
}

namespace {


// The structure registered under a registry entry's name, or nullptr.
const zoo::BackboneFactory* factory_of(const std::string& arch) {
  for (const auto& structure : zoo::all_structures())
    if (structure.name == arch) return &structure.build;
  return nullptr;
}

}  // namespace

namespace zoo {

const std::vector<ArchStructure>& all_structures() {
  static const std::vector<ArchStructure> all = [] {
    std::vector<ArchStructure> out;
    for (auto list : {mobilenet_v2_structures, mobilenet_v3_structures, resnet_structures, vgg_structures,
                      squeezenet_structures, efficientnet_structures, convnext_structures, regnet_structures,
                      vision_transformer_structures}) {
      for (auto& structure : list()) out.push_back(std::move(structure));
    }
    return out;
  }();
  return all;
}

}  // namespace zoo

BackboneImpl::BackboneImpl(std::string arch, bool include_top, int64_t num_classes)
    : arch_(std::move(arch)), include_top_(include_top), num_classes_(num_classes) {}

torch::Tensor BackboneImpl::forward(torch::Tensor x) {
  torch::Tensor features = forward_features(x);
  return include_top_ ? forward_top(features) : features;
}

void BackboneImpl::require_top() const {
  if (!include_top_)
    throw Error(arch_ + " was built without its classifier (include_top is off)",
                "use forward_features and a head of your own, or build it with include_top");
}

void BackboneImpl::set_trainable_blocks(int n, bool bn_inference) {
  const std::vector<std::string> units = blocks();
  const bool all = n < 0 || static_cast<size_t>(n) >= units.size();
  std::vector<std::string> trainable(all ? units.begin() : units.end() - n, units.end());
  for (auto& item : named_parameters(/*recurse=*/true)) {
    bool train_it = all;
    for (const auto& prefix : trainable) train_it = train_it || lies_under(item.key(), prefix);
    item.value().set_requires_grad(train_it);
  }
  trainable_blocks_ = all ? -1 : n;
  bn_inference_ = bn_inference;
  train(is_training());  // resets every module's mode, then re-applies the rules
}

int64_t BackboneImpl::count_parameters(bool trainable_only) const {
  int64_t count = 0;
  for (const auto& p : parameters(/*recurse=*/true))
    if (!trainable_only || p.requires_grad()) count += p.numel();
  return count;
}

void BackboneImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (on) apply_inference_modes();
}

// Frozen part: every leaf module up to the end of the last frozen unit, in
// forward order (registration order, which all zoo archs follow). A
// parameter-free module between units (a dropout before a classifier layer)
// belongs to the unit it feeds, so it is frozen only when that unit is.
void BackboneImpl::apply_inference_modes() {
  if (!is_training()) return;  // eval() already holds everything in inference mode
  const std::vector<std::string> units = blocks();
  const size_t frozen_units =
      trainable_blocks_ < 0 ? 0 : units.size() - std::min<size_t>(units.size(), trainable_blocks_);
  const auto in_order = named_modules(/*name_prefix=*/"", /*include_self=*/false);  // pre-order
  size_t frozen_end = 0;  // modules [0, frozen_end) are frozen
  if (frozen_units > 0) {
    const std::string& last_frozen = units[frozen_units - 1];
    for (size_t i = 0; i < in_order.size(); ++i)
      if (lies_under(in_order[i].key(), last_frozen)) frozen_end = i + 1;
  }
  for (size_t i = 0; i < in_order.size(); ++i) {
    const auto& module = in_order[i].value();
    const bool frozen = i < frozen_end && module->children().empty();
    const bool norm_held = bn_inference_ && module->as<torch::nn::BatchNorm2d>() != nullptr;
    if (frozen || norm_held) module->eval();
  }
}

Value BackboneImpl::export_onnx(GraphWriter& g, const Value& x) {
  const Value features = export_features(g, x);
  return include_top_ ? export_top(g, features) : features;
}

Backbone make_backbone(const std::string& arch, const BackboneOptions& options) {
  if (options.num_classes < 1)
    throw UsageError("number of classes must be at least 1, got " + std::to_string(options.num_classes),
                     "pass the number of classes of your dataset");
  const BackboneInfo* info = find_backbone(arch);
  const zoo::BackboneFactory* factory = info ? factory_of(arch) : nullptr;
  if (factory) {
    BackboneOptions resolved = options;
    resolved.stochastic_depth = options.stochastic_depth.value_or(info->stochastic_depth);
    if (*resolved.stochastic_depth < 0 || *resolved.stochastic_depth >= 1)
      throw UsageError("stochastic depth of " + arch + " must be in [0, 1), got " +
                       std::to_string(*resolved.stochastic_depth));
    return (*factory)(resolved);
  }
  std::string known;
  for (const auto& name : backbone_archs()) known += (known.empty() ? "" : ", ") + name;
  throw UsageError("unknown backbone '" + arch + "'", "choose one of: " + known);
}

Backbone make_backbone(const std::string& arch, bool include_top, int64_t num_classes) {
  BackboneOptions options;
  options.include_top = include_top;
  options.num_classes = num_classes;
  return make_backbone(arch, options);
}

std::vector<std::string> backbone_archs() {
  std::vector<std::string> names;
  for (const auto& name : backbone_arch_names()) {
    if (factory_of(name)) names.push_back(name);
  }
  return names;
}

LoadReport load_backbone_state(BackboneImpl& backbone, const TensorMap& given, bool strict) {
  TensorMap state = given;
  backbone.upgrade_state_names(state);
  if (backbone.include_top()) return load_module_state(backbone, state, strict);
  TensorMap without_top;
  const auto tops = backbone.top_prefixes();
  for (const auto& [name, tensor] : state) {
    bool is_top = false;
    for (const auto& prefix : tops) is_top = is_top || lies_under(name, prefix);
    if (!is_top) without_top.emplace(name, tensor);
  }
  return load_module_state(backbone, without_top, strict);
}

}  // namespace tabby::nn
