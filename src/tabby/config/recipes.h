// Recipes: training settings bundled for a common case, chosen with
// `tabby train --recipe NAME`. A recipe is a [train] table applied over the
// model file's (flags still override it) plus what it asks of the backbone:
// which of its blocks train and whether batch norm keeps its statistics.
// The run records the recipe's name and every setting it made.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace tabby {

struct Recipe {
  std::string name;
  std::string description;
  nlohmann::json train;  // [train] keys
  // The backbone's trainable state during the first phase; nullopt: as the model says.
  std::optional<bool> backbone_trainable;
  bool bn_inference = true;  // batch norm in inference mode while it trains
  bool needs_backbone = false;
};

const std::vector<Recipe>& recipes();
// UsageError naming the known recipes for an unknown name.
const Recipe& find_recipe(const std::string& name);
// "finetune, fastai, scratch"
std::string recipe_names();

}  // namespace tabby
