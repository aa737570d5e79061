#include "tabby/config/model_spec.h"

#include <algorithm>
#include <map>
#include <set>

#include "tabby/config/presets.h"
#include "tabby/config/toml_json.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

// Keys each layer type accepts besides `type` and `name`.
const std::map<std::string, std::set<std::string>>& layer_schema() {
  static const std::map<std::string, std::set<std::string>> schema = {
      {"Rescaling", {"scale", "offset"}},
      {"Normalization", {"mean", "std", "scale"}},
      {"RandomFlip", {"mode"}},
      {"RandomRotation", {"factor", "fill_mode"}},
      {"RandomZoom", {"height_factor", "width_factor", "fill_mode"}},
      {"RandomTranslation", {"height_factor", "width_factor", "fill_mode"}},
      {"RandomContrast", {"factor"}},
      {"RandomResizedCrop", {"scale", "ratio"}},
      {"RandomColorJitter", {"brightness_factor", "contrast_factor", "saturation_factor", "hue_factor", "value_range"}},
      {"TrivialAugmentWide", {"num_magnitude_bins", "interpolation", "value_range"}},
      {"RandAugment", {"num_ops", "magnitude", "num_magnitude_bins", "interpolation", "value_range"}},
      {"Conv2D", {"filters", "kernel_size", "strides", "padding", "activation", "use_bias"}},
      {"MaxPooling2D", {"pool_size", "strides", "padding"}},
      {"AveragePooling2D", {"pool_size", "strides", "padding"}},
      {"GlobalAveragePooling2D", {}},
      {"GlobalMaxPooling2D", {}},
      {"Flatten", {}},
      {"Dense", {"units", "activation", "use_bias"}},
      {"Dropout", {"rate"}},
      {"BatchNormalization", {"momentum", "epsilon"}},
      {"Activation", {"activation"}},
      {"ResidualBlock", {"filters", "strides", "momentum", "epsilon", "zero_init_residual"}},
      {"Backbone", {"arch", "weights", "include_top", "trainable", "bn_inference", "stochastic_depth"}},
  };
  return schema;
}

// Keras' automatic layer names: conv2d, conv2d_1, max_pooling2d, dense_2, ...
std::string snake_name(const std::string& type) {
  static const std::map<std::string, std::string> names = {
      {"Conv2D", "conv2d"},
      {"MaxPooling2D", "max_pooling2d"},
      {"AveragePooling2D", "average_pooling2d"},
      {"GlobalAveragePooling2D", "global_average_pooling2d"},
      {"GlobalMaxPooling2D", "global_max_pooling2d"},
      {"BatchNormalization", "batch_normalization"},
      {"RandomFlip", "random_flip"},
      {"RandomRotation", "random_rotation"},
      {"RandomZoom", "random_zoom"},
      {"RandomTranslation", "random_translation"},
      {"RandomContrast", "random_contrast"},
      {"RandomResizedCrop", "random_resized_crop"},
      {"RandomColorJitter", "random_color_jitter"},
      {"TrivialAugmentWide", "trivial_augment_wide"},
      {"RandAugment", "rand_augment"},
      {"ResidualBlock", "residual_block"},
  };
  auto it = names.find(type);
  if (it != names.end()) return it->second;
  std::string lower = type;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower;
}

const std::set<std::string> kTopLevelKeys = {"name",         "description", "layers",      "augment",
                                             "train",        "backbone",    "weights",     "include_top",
                                             "freeze_backbone", "bn_inference", "preprocessing", "pooling",
                                             "stochastic_depth"};

// Top-level settings must have the right kind before they are read, so a
// `freeze_backbone = "yes"` is an error naming the file, not a JSON exception.
void check_top_level_types(const nlohmann::json& root, const std::string& source) {
  const std::set<std::string> strings = {"name", "description", "backbone", "weights", "preprocessing", "pooling"};
  const std::set<std::string> bools = {"include_top", "freeze_backbone", "bn_inference"};
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& key = it.key();
    if (strings.count(key) && !it.value().is_string()) {
      throw Error(source + ": `" + key + "` must be a string",
                  key == "backbone" ? "a torchvision name such as \"mobilenet_v2\"" : "put the value in quotes");
    }
    if (key == "stochastic_depth" && !it.value().is_number()) {
      throw Error(source + ": `stochastic_depth` must be a number", "a drop probability in [0, 1), e.g. 0.2");
    }
    if (bools.count(key) && !it.value().is_boolean()) {
      throw Error(source + ": `" + key + "` must be true or false");
    }
  }
}

LayerSpec parse_layer(const nlohmann::json& j, const std::string& source, size_t index) {
  const std::string where = source + ": layer " + std::to_string(index + 1);
  if (!j.is_object()) throw Error(where + ": expected a table with a `type` key");
  if (!j.contains("type") || !j["type"].is_string()) {
    throw Error(where + ": missing `type`", "one of: " + util::join(known_layer_types()));
  }
  LayerSpec layer;
  layer.type = j["type"].get<std::string>();
  auto schema_it = layer_schema().find(layer.type);
  if (schema_it == layer_schema().end()) {
    throw Error(where + ": unknown layer type '" + layer.type + "'", "one of: " + util::join(known_layer_types()));
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "type") continue;
    if (it.key() == "name") {
      if (!it.value().is_string()) throw Error(where + ": `name` must be a string");
      layer.name = it.value().get<std::string>();
      continue;
    }
    if (!schema_it->second.count(it.key())) {
      std::vector<std::string> allowed(schema_it->second.begin(), schema_it->second.end());
      throw Error(where + " (" + layer.type + "): unknown key '" + it.key() + "'",
                  allowed.empty() ? "this layer takes no settings" : "allowed keys: " + util::join(allowed));
    }
    layer.params[it.key()] = it.value();
  }
  return layer;
}

std::vector<LayerSpec> parse_layer_list(const nlohmann::json& root, const char* key, const std::string& source) {
  std::vector<LayerSpec> out;
  if (!root.contains(key)) return out;
  const auto& list = root[key];
  if (!list.is_array()) throw Error(source + ": `" + key + "` must be an array of tables ([[" + key + "]])");
  for (size_t i = 0; i < list.size(); ++i) out.push_back(parse_layer(list[i], source, i));
  return out;
}

// Expands `backbone = "..."` and friends into explicit layers.
void expand_backbone_shorthand(const nlohmann::json& root, ModelSpec& spec, std::vector<LayerSpec> augment,
                               std::vector<LayerSpec> head) {
  const std::string arch = root["backbone"].get<std::string>();
  const std::string weights = root.value("weights", std::string("imagenet"));
  const bool include_top = root.value("include_top", false);
  std::string preprocessing = root.value("preprocessing", std::string("auto"));
  if (preprocessing == "auto") preprocessing = weights == "none" ? "tf" : "imagenet";

  std::vector<LayerSpec> layers;
  if (preprocessing == "imagenet") {
    // What the backbone's weights were trained with (an unknown arch is reported by validation).
    const BackboneInfo* info = find_backbone(arch);
    const ImageNormalization& n = info ? info->normalization : imagenet_normalization();
    LayerSpec norm;
    norm.type = "Normalization";
    norm.params = {{"mean", n.mean}, {"std", n.std}, {"scale", n.scale}};
    layers.push_back(norm);
  } else if (preprocessing == "tf") {
    LayerSpec rescale;
    rescale.type = "Rescaling";
    rescale.params = {{"scale", 1.0 / 127.5}, {"offset", -1.0}};
    layers.push_back(rescale);
  } else if (preprocessing != "none") {
    throw Error(spec.source + ": unknown preprocessing '" + preprocessing + "'",
                "use auto, imagenet (torchvision mean/std), tf ([-1, 1]) or none");
  }
  // Augmentation acts on the images before the backbone sees them; its
  // position relative to the normalisation does not change the result for
  // flips and rotations, and keeping it first matches the Keras tutorials.
  layers.insert(layers.begin(), augment.begin(), augment.end());

  LayerSpec backbone;
  backbone.type = "Backbone";
  backbone.name = arch;
  backbone.params = {{"arch", arch}, {"weights", weights}, {"include_top", include_top}};
  if (root.contains("freeze_backbone")) backbone.params["trainable"] = !root["freeze_backbone"].get<bool>();
  if (root.contains("bn_inference")) backbone.params["bn_inference"] = root["bn_inference"];
  if (root.contains("stochastic_depth")) backbone.params["stochastic_depth"] = root["stochastic_depth"];
  layers.push_back(backbone);

  if (include_top) {
    if (!head.empty()) {
      throw Error(spec.source + ": include_top = true uses the backbone's own classifier, so [[layers]] must be empty");
    }
  } else {
    const std::string pooling = root.value("pooling", head.empty() ? std::string("avg") : std::string("none"));
    if (pooling == "avg" || pooling == "max") {
      LayerSpec pool;
      pool.type = pooling == "avg" ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D";
      layers.push_back(pool);
    } else if (pooling != "none") {
      throw Error(spec.source + ": unknown pooling '" + pooling + "'", "use avg, max or none");
    }
    if (head.empty()) {
      LayerSpec dropout;
      dropout.type = "Dropout";
      dropout.params = {{"rate", 0.2}};
      LayerSpec dense;
      dense.type = "Dense";
      head = {dropout, dense};
    }
    layers.insert(layers.end(), head.begin(), head.end());
  }
  spec.layers = std::move(layers);
}

void assign_names(ModelSpec& spec) {
  std::set<std::string> used;
  for (const auto& l : spec.layers) {
    if (l.name.empty()) continue;
    if (!used.insert(l.name).second) throw Error(spec.source + ": two layers are named '" + l.name + "'");
  }
  std::map<std::string, int> counters;
  for (auto& l : spec.layers) {
    if (!l.name.empty()) continue;
    const std::string base = snake_name(l.type);
    for (;;) {
      int n = counters[base]++;
      std::string candidate = n == 0 ? base : base + "_" + std::to_string(n);
      if (used.insert(candidate).second) {
        l.name = candidate;
        break;
      }
    }
  }
  for (const auto& l : spec.layers) {
    if (l.name.find('.') != std::string::npos) {
      throw Error(spec.source + ": layer name '" + l.name + "' contains '.'", "use letters, digits, '_' or '-'");
    }
  }
}

void check_structure(const ModelSpec& spec) {
  size_t backbones = 0;
  for (const auto& l : spec.layers) backbones += l.type == "Backbone";
  if (backbones > 1) throw Error(spec.source + ": a model can hold at most one Backbone layer");
  if (spec.layers.empty()) throw Error(spec.source + ": the model has no layers");
  // The zoo's names are known here, so a misspelt backbone is caught with the file named.
  for (const auto& l : spec.layers) {
    if (l.type != "Backbone") continue;
    const auto& archs = backbone_arch_names();
    const nlohmann::json arch = l.params.value("arch", nlohmann::json());
    if (!arch.is_string() || std::find(archs.begin(), archs.end(), arch.get<std::string>()) == archs.end()) {
      throw Error(spec.source + ": layer '" + l.name + "' (Backbone): unknown architecture " +
                      (arch.is_null() ? std::string("(no `arch`)") : arch.dump()),
                  "one of: " + util::join(archs));
    }
  }
  // Every Dense but the last needs explicit units.
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const auto& l = spec.layers[i];
    bool last_dense = true;
    for (size_t k = i + 1; k < spec.layers.size(); ++k) last_dense = last_dense && spec.layers[k].type != "Dense";
    if (l.type == "Dense" && !l.has("units") && !last_dense) {
      throw Error(spec.source + ": layer '" + l.name + "' (Dense) needs `units`",
                  "only the last Dense layer may leave out `units` (it then gets one unit per class)");
    }
  }
}

}  // namespace

double LayerSpec::get_double(const std::string& key, double fallback) const {
  if (!params.contains(key)) return fallback;
  const auto& v = params[key];
  if (!v.is_number()) throw Error("layer '" + name + "' (" + type + "): `" + key + "` must be a number");
  return v.get<double>();
}

int64_t LayerSpec::get_int(const std::string& key, int64_t fallback) const {
  if (!params.contains(key)) return fallback;
  const auto& v = params[key];
  if (!v.is_number_integer()) throw Error("layer '" + name + "' (" + type + "): `" + key + "` must be an integer");
  return v.get<int64_t>();
}

bool LayerSpec::get_bool(const std::string& key, bool fallback) const {
  if (!params.contains(key)) return fallback;
  const auto& v = params[key];
  if (!v.is_boolean()) throw Error("layer '" + name + "' (" + type + "): `" + key + "` must be true or false");
  return v.get<bool>();
}

std::string LayerSpec::get_string(const std::string& key, const std::string& fallback) const {
  if (!params.contains(key)) return fallback;
  const auto& v = params[key];
  if (!v.is_string()) throw Error("layer '" + name + "' (" + type + "): `" + key + "` must be a string");
  return v.get<std::string>();
}

std::pair<int64_t, int64_t> LayerSpec::get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback) const {
  if (!params.contains(key)) return fallback;
  const auto& v = params[key];
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  if (v.is_array() && v.size() == 2 && v[0].is_number_integer() && v[1].is_number_integer()) {
    return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  }
  throw Error("layer '" + name + "' (" + type + "): `" + key + "` must be an integer or [height, width]");
}

std::optional<size_t> ModelSpec::backbone_index() const {
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].type == "Backbone") return i;
  }
  return std::nullopt;
}

const std::vector<std::string>& known_layer_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> t;
    for (const auto& [k, v] : layer_schema()) t.push_back(k);
    return t;
  }();
  return types;
}

void replace_augmentation(ModelSpec& spec, std::vector<LayerSpec> augment) {
  std::vector<LayerSpec> kept;
  for (auto& l : spec.layers) {
    if (!is_augmentation_layer(l.type)) kept.push_back(std::move(l));
  }
  for (auto& a : augment) a.name.clear();
  kept.insert(kept.begin(), augment.begin(), augment.end());
  spec.layers = std::move(kept);
  assign_names(spec);
}

bool is_augmentation_layer(const std::string& type) {
  return type == "RandomFlip" || type == "RandomRotation" || type == "RandomZoom" || type == "RandomTranslation" ||
         type == "RandomContrast" || type == "RandomResizedCrop" || type == "RandomColorJitter" ||
         type == "TrivialAugmentWide" || type == "RandAugment";
}

bool takes_value_range(const std::string& type) {
  return type == "RandomColorJitter" || type == "TrivialAugmentWide" || type == "RandAugment";
}

ModelSpec parse_model_toml(const std::string& text, const std::string& source) {
  nlohmann::json root = parse_toml_to_json(text, source);
  ModelSpec spec;
  spec.source = source;
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (!kTopLevelKeys.count(it.key())) {
      throw Error(source + ": unknown top-level key '" + it.key() + "'",
                  "allowed: " + util::join(std::vector<std::string>(kTopLevelKeys.begin(), kTopLevelKeys.end())));
    }
  }
  check_top_level_types(root, source);
  spec.name = root.value("name", std::string());
  if (spec.name.empty()) spec.name = std::filesystem::path(source).stem().string();
  if (root.contains("train")) {
    if (!root["train"].is_object()) throw Error(source + ": `train` must be a table ([train])");
    spec.train = root["train"];
  }
  std::vector<LayerSpec> augment = parse_layer_list(root, "augment", source);
  std::vector<LayerSpec> layers = parse_layer_list(root, "layers", source);
  for (const auto& a : augment) {
    if (!is_augmentation_layer(a.type)) {
      throw Error(source + ": [[augment]] holds '" + a.type + "'", "only augmentation layers (Random*, TrivialAugmentWide, RandAugment) belong in [[augment]]");
    }
  }
  if (root.contains("backbone")) {
    expand_backbone_shorthand(root, spec, std::move(augment), std::move(layers));
  } else {
    for (const char* key :
         {"weights", "include_top", "freeze_backbone", "bn_inference", "preprocessing", "pooling", "stochastic_depth"}) {
      if (root.contains(key)) {
        throw Error(source + ": `" + key + "` only applies with `backbone = \"...\"`");
      }
    }
    spec.layers = std::move(augment);
    spec.layers.insert(spec.layers.end(), layers.begin(), layers.end());
  }
  assign_names(spec);
  check_structure(spec);
  return spec;
}

ModelSpec load_model_file(const std::filesystem::path& path) {
  return parse_model_toml(read_file(path), path.string());
}

ModelSpec resolve_model(const std::string& preset_or_path) {
  if (auto text = preset_toml(preset_or_path)) {
    ModelSpec spec = parse_model_toml(*text, "preset " + preset_or_path);
    spec.name = preset_or_path;
    return spec;
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(preset_or_path, ec)) return load_model_file(preset_or_path);
  throw UsageError("--model " + preset_or_path + ": not a preset and no such file",
                   "presets: " + util::join(preset_names()) + "; or give a path to a .toml model file");
}

std::string model_to_toml(const ModelSpec& spec) {
  std::string out = "# tabby model, resolved from " + spec.source + "\n";
  out += "name = " + toml_inline_value(spec.name) + "\n";
  for (const auto& l : spec.layers) {
    out += "\n[[layers]]\ntype = " + toml_inline_value(l.type) + "\nname = " + toml_inline_value(l.name) + "\n";
    for (auto it = l.params.begin(); it != l.params.end(); ++it) {
      out += toml_key(it.key()) + " = " + toml_inline_value(it.value()) + "\n";
    }
  }
  if (!spec.train.empty()) {
    out += "\n[train]\n";
    for (auto it = spec.train.begin(); it != spec.train.end(); ++it) {
      out += toml_key(it.key()) + " = " + toml_inline_value(it.value()) + "\n";
    }
  }
  return out;
}

}  // namespace tabby
