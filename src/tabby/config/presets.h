// Built-in models, written as the same TOML a user would write: the Keras
// tutorials' models (see shared/TUTORIALS.md) and one transfer-learning model
// per zoo backbone.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tabby/config/backbone_table.h"  // backbone_arch_names()

namespace tabby {

std::vector<std::string> preset_names();
std::optional<std::string> preset_toml(const std::string& name);
std::string preset_description(const std::string& name);

}  // namespace tabby
