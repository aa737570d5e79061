#include "tabby/train/param_groups.h"

#include <cmath>
#include <set>
#include <string>

namespace tabby {

std::vector<ParamGroup> parameter_groups(nn::NetworkImpl& net, const TrainOptions& o) {
  const nn::Backbone backbone = net.backbone();
  std::vector<ParamGroup> groups(1);  // the head
  const bool discriminative = o.backbone_lr_ratio != 1.0 || o.layer_decay != 1.0;
  if (!backbone || !discriminative) {
    for (auto& p : net.parameters(true)) {
      if (p.requires_grad()) groups[0].params.push_back(p);
    }
    return groups;
  }
  std::vector<std::string> units;
  std::vector<std::string> tops = backbone->include_top() ? backbone->top_prefixes() : std::vector<std::string>{};
  for (const auto& unit : backbone->blocks()) {
    bool is_top = false;
    for (const auto& t : tops) is_top = is_top || nn::lies_under(unit, t);
    if (!is_top) units.push_back(unit);
  }
  // Units from the top down: the last unit is group 1.
  for (size_t k = 0; k < units.size(); ++k) {
    groups.push_back({{}, o.backbone_lr_ratio * std::pow(o.layer_decay, static_cast<double>(k))});
  }
  std::set<const void*> in_backbone;
  for (const auto& item : backbone->named_parameters(true)) {
    const torch::Tensor& p = item.value();
    in_backbone.insert(p.unsafeGetTensorImpl());
    if (!p.requires_grad()) continue;
    size_t group = 0;  // a top the backbone carries as the head
    for (size_t u = 0; u < units.size(); ++u) {
      if (nn::lies_under(item.key(), units[u])) group = units.size() - u;
    }
    bool is_top = false;
    for (const auto& t : tops) is_top = is_top || nn::lies_under(item.key(), t);
    // A backbone parameter outside every unit trains with the lowest rate of the backbone.
    if (group == 0 && !is_top) group = units.size();
    groups[group].params.push_back(p);
  }
  for (auto& p : net.parameters(true)) {
    if (p.requires_grad() && !in_backbone.count(p.unsafeGetTensorImpl())) groups[0].params.push_back(p);
  }
  std::vector<ParamGroup> used;
  for (auto& g : groups) {
    if (!g.params.empty()) used.push_back(std::move(g));
  }
  return used;
}

std::vector<double> lr_ratios(const std::vector<ParamGroup>& groups) {
  std::vector<double> ratios;
  for (const auto& g : groups) ratios.push_back(g.lr_ratio);
  return ratios;
}

}  // namespace tabby
