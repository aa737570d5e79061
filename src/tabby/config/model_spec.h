// A model declared, not compiled: an ordered list of layers with their
// settings, read from a small TOML file or a built-in preset. The engine
// (tabby/nn) turns a ModelSpec into LibTorch modules; this file knows nothing
// about tensors, so configs can be parsed, validated and printed anywhere.
//
// File format (TOML):
//
//   name = "my-cnn"
//   [[layers]]
//   type = "Rescaling"
//   scale = 0.00784313725
//   offset = -1.0
//   [[layers]]
//   type = "Conv2D"
//   filters = 32
//   kernel_size = 3
//   activation = "relu"
//   ...
//   [[layers]]
//   type = "Dense"          # the last Dense may omit `units`: one per class
//
// Transfer learning is "just another config": a Backbone layer, or the
// shorthand keys at the top level, which expand to
// [preprocessing] + [[augment]] + Backbone + [[layers]]:
//
//   backbone = "mobilenet_v2"   # torchvision architecture name
//   weights = "imagenet"        # "imagenet", "none" or a weights file
//   freeze_backbone = true
//   pooling = "avg"             # optional shorthand for the head's first layer
//   [[augment]] ...             # augmentation applied before the backbone
//   [[layers]] ...              # the head
//
// An optional [train] table holds training defaults (epochs, lr, fine-tuning
// schedule, ...) that command-line flags override.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tabby {

// One layer: its type (Keras vocabulary), a unique name ("conv2d_1") and its
// settings as given (validated when the layer is built).
struct LayerSpec {
  std::string type;
  std::string name;
  nlohmann::json params = nlohmann::json::object();

  // Typed reads with defaults; a wrong type is a tabby::Error naming the layer and key.
  double get_double(const std::string& key, double fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  bool has(const std::string& key) const { return params.contains(key); }
  // An int or a two-element [h, w] list (kernel sizes, strides, pool sizes).
  std::pair<int64_t, int64_t> get_pair(const std::string& key, std::pair<int64_t, int64_t> fallback) const;
};

struct ModelSpec {
  std::string name;
  std::vector<LayerSpec> layers;
  // Training defaults from the file's [train] table (flags override them).
  nlohmann::json train = nlohmann::json::object();
  // Where the spec came from ("preset tutorial-cnn", a file path) for messages.
  std::string source;

  // The index of the Backbone layer, if any.
  std::optional<size_t> backbone_index() const;
};

// The layer types tabby knows, in Keras spelling.
const std::vector<std::string>& known_layer_types();
bool is_augmentation_layer(const std::string& type);
// The model's augmentation layers (wherever they are) replaced by `augment`,
// placed first, where the layers see pixel values 0-255; names are given to
// the new layers as a model file's would get them.
void replace_augmentation(ModelSpec& spec, std::vector<LayerSpec> augment);
// Augmentation layers whose result depends on the pixel values' range (colour
// ops clamp to it): they take `value_range` = [lo, hi]; when it is not given,
// the network derives it from the Rescaling layers before them (the input is
// [0, 255]).
bool takes_value_range(const std::string& type);

// Parses TOML text into a spec; expands the backbone shorthand, assigns
// Keras-style names (conv2d, conv2d_1, ...) where none are given and checks
// every layer type and key. Errors name the file and the offending layer.
ModelSpec parse_model_toml(const std::string& text, const std::string& source);
ModelSpec load_model_file(const std::filesystem::path& path);

// A preset name ("tutorial-cnn", "mobilenet_v2", ...) or a path to a TOML file.
ModelSpec resolve_model(const std::string& preset_or_path);

// Serialises a (resolved) spec back to TOML, so a run folder's model.toml can
// be read by load_model_file and reused with --model.
std::string model_to_toml(const ModelSpec& spec);

}  // namespace tabby
