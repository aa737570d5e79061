#include "tabby/config/augment_spec.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "tabby/util/error.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

const char* kHint =
    "e.g. --augment \"flip,rotation=0.1,zoom=0.2\" (flip, rotation, zoom, translation, contrast, crop, jitter, "
    "trivial, randaugment)";

// A number parsed whole, or nullopt.
std::optional<double> number_of(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

double factor_of(const std::string& item, const std::string& key, const std::string& value) {
  const auto f = number_of(value);
  if (!f || !(*f > 0) || *f > 1) {
    throw UsageError("--augment: '" + item + "' needs a factor between 0 and 1 (" + key + "=0.1)", kHint);
  }
  return *f;
}

// An item's key and its values: "jitter=0.4,0.4,0.4" has three.
struct AugmentItem {
  std::string text, key;
  std::vector<std::string> values;
};

void no_value(const AugmentItem& item) {
  if (!item.values.empty()) throw UsageError("--augment: '" + item.text + "' takes no value", kHint);
}

LayerSpec crop_layer(const AugmentItem& item) {
  LayerSpec l;
  l.type = "RandomResizedCrop";
  if (item.values.empty()) return l;
  const std::string bad = "--augment: '" + item.text + "': give the area fraction as crop=S or crop=S1-S2, 0 < S <= 1";
  if (item.values.size() != 1) throw UsageError(bad, kHint);
  const std::string& v = item.values[0];
  const auto dash = v.find('-', 1);
  const auto lo = number_of(v.substr(0, dash));
  const auto hi = dash == std::string::npos ? std::optional<double>(1.0) : number_of(v.substr(dash + 1));
  if (!lo || !hi || !(*lo > 0) || *lo > *hi || *hi > 1) throw UsageError(bad, kHint);
  l.params["scale"] = {*lo, *hi};
  return l;
}

LayerSpec jitter_layer(const AugmentItem& item) {
  const std::string bad = "--augment: '" + item.text +
                          "': give jitter=F or jitter=B,C,S[,H] (brightness, contrast, saturation >= 0, hue 0 to 0.5)";
  if (item.values.size() != 1 && item.values.size() != 3 && item.values.size() != 4) throw UsageError(bad, kHint);
  std::vector<double> v;
  for (const auto& text : item.values) {
    const auto f = number_of(text);
    if (!f || *f < 0) throw UsageError(bad, kHint);
    v.push_back(*f);
  }
  if (v.size() == 1) v = {v[0], v[0], v[0]};
  if (v.size() == 4 && v[3] > 0.5) throw UsageError(bad, kHint);
  LayerSpec l;
  l.type = "RandomColorJitter";
  const char* keys[] = {"brightness_factor", "contrast_factor", "saturation_factor", "hue_factor"};
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] > 0) l.params[keys[i]] = v[i];
  }
  if (l.params.empty()) throw UsageError("--augment: '" + item.text + "' changes nothing (all factors 0)", kHint);
  return l;
}

LayerSpec randaugment_layer(const AugmentItem& item) {
  const std::string bad = "--augment: '" + item.text + "': give randaugment=N or randaugment=N,M (N ops 1 to 16, "
                          "magnitude M 0 to 30)";
  if (item.values.size() > 2) throw UsageError(bad, kHint);
  LayerSpec l;
  l.type = "RandAugment";
  const char* keys[] = {"num_ops", "magnitude"};
  const double hi[] = {16, 30}, lo[] = {1, 0};
  for (size_t i = 0; i < item.values.size(); ++i) {
    const auto v = number_of(item.values[i]);
    if (!v || *v != std::floor(*v) || *v < lo[i] || *v > hi[i]) throw UsageError(bad, kHint);
    l.params[keys[i]] = static_cast<int64_t>(*v);
  }
  return l;
}

LayerSpec layer_of(const AugmentItem& item) {
  const std::string& key = item.key;
  LayerSpec l;
  if (key == "crop") {
    l = crop_layer(item);
  } else if (key == "jitter") {
    l = jitter_layer(item);
  } else if (key == "trivial") {
    no_value(item);
    l.type = "TrivialAugmentWide";
  } else if (key == "randaugment") {
    l = randaugment_layer(item);
  } else {
    // The Keras layers take one value at most.
    if (item.values.size() > 1) {
      throw UsageError("--augment: '" + item.text + "' takes one value", kHint);
    }
    const std::string value = item.values.empty() ? "" : item.values[0];
    const std::string text = item.text;
    if (key == "flip") {
      if (value != "" && value != "horizontal" && value != "vertical" && value != "both") {
        throw UsageError("--augment: flip=" + value + ": use horizontal, vertical or both", kHint);
      }
      l.type = "RandomFlip";
      l.params["mode"] = value.empty() ? "horizontal" : value;
    } else if (key == "rotation" || key == "contrast") {
      l.type = key == "rotation" ? "RandomRotation" : "RandomContrast";
      l.params["factor"] = factor_of(text, key, value);
    } else if (key == "zoom") {
      l.type = "RandomZoom";
      l.params["height_factor"] = factor_of(text, key, value);
    } else if (key == "translation") {
      const double f = factor_of(text, key, value);
      l.type = "RandomTranslation";
      l.params["height_factor"] = f;
      l.params["width_factor"] = f;
    } else {
      throw UsageError("--augment: unknown augmentation '" + key + "'", kHint);
    }
  }
  l.name = l.type;
  return l;
}

}  // namespace

std::vector<LayerSpec> parse_augment_spec(const std::string& text) {
  std::vector<AugmentItem> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string token = util::trim(text.substr(start, comma - start));
    start = comma + 1;
    if (token.empty()) {
      // A trailing comma is fine; an empty item elsewhere is a typo.
      if (comma == text.size() && !items.empty()) break;
      throw UsageError("--augment \"" + text + "\": an empty item", kHint);
    }
    if (!items.empty() && token.find('=') == std::string::npos && number_of(token)) {
      // A bare number continues the previous item: jitter=0.4,0.4,0.4.
      if (items.back().values.empty()) {
        throw UsageError("--augment \"" + text + "\": '" + token + "' follows '" + items.back().text +
                             "', which takes no list",
                         kHint);
      }
      items.back().values.push_back(token);
      items.back().text += "," + token;
    } else {
      const auto eq = token.find('=');
      AugmentItem item{token, util::trim(token.substr(0, eq)), {}};
      if (eq != std::string::npos) item.values.push_back(util::trim(token.substr(eq + 1)));
      items.push_back(std::move(item));
    }
    if (comma == text.size()) break;
  }
  if (items.empty()) throw UsageError("--augment is empty", kHint);
  std::vector<LayerSpec> layers;
  for (const auto& item : items) layers.push_back(layer_of(item));
  return layers;
}

}  // namespace tabby
