#include "tabby/config/augment_spec.h"

#include <algorithm>

#include "tabby/util/error.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

const char* kHint = "e.g. --augment \"flip,rotation=0.1,zoom=0.2\" (flip, rotation, zoom, translation, contrast)";

double factor_of(const std::string& item, const std::string& key, const std::string& value) {
  try {
    size_t used = 0;
    const double f = std::stod(value, &used);
    if (used != value.size() || !(f > 0) || f > 1) throw std::invalid_argument(value);
    return f;
  } catch (const std::exception&) {
    throw UsageError("--augment: '" + item + "' needs a factor between 0 and 1 (" + key + "=0.1)", kHint);
  }
}

// One item: "flip", "flip=vertical", "rotation=0.1", ...
LayerSpec layer_of(const std::string& item) {
  const auto eq = item.find('=');
  const std::string key = item.substr(0, eq);
  const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
  LayerSpec l;
  if (key == "flip") {
    if (value != "" && value != "horizontal" && value != "vertical" && value != "both") {
      throw UsageError("--augment: flip=" + value + ": use horizontal, vertical or both", kHint);
    }
    l.type = "RandomFlip";
    l.params["mode"] = value.empty() ? "horizontal" : value;
  } else if (key == "rotation" || key == "contrast") {
    l.type = key == "rotation" ? "RandomRotation" : "RandomContrast";
    l.params["factor"] = factor_of(item, key, value);
  } else if (key == "zoom") {
    l.type = "RandomZoom";
    l.params["height_factor"] = factor_of(item, key, value);
  } else if (key == "translation") {
    const double f = factor_of(item, key, value);
    l.type = "RandomTranslation";
    l.params["height_factor"] = f;
    l.params["width_factor"] = f;
  } else {
    throw UsageError("--augment: unknown augmentation '" + key + "'", kHint);
  }
  l.name = l.type;
  return l;
}

}  // namespace

std::vector<LayerSpec> parse_augment_spec(const std::string& text) {
  std::vector<LayerSpec> layers;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = util::trim(text.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) {
      // A trailing comma is fine; an empty item elsewhere is a typo.
      if (comma == text.size() && !layers.empty()) break;
      throw UsageError("--augment \"" + text + "\": an empty item", kHint);
    }
    layers.push_back(layer_of(item));
    if (comma == text.size()) break;
  }
  if (layers.empty()) throw UsageError("--augment is empty", kHint);
  return layers;
}

}  // namespace tabby
