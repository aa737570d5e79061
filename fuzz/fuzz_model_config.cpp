// Fuzz target: the TOML model config parser (parse_model_toml, with the
// backbone shorthand, layer schema and naming), the [train] table reader
// (apply_train_table + validate) and the TOML <-> JSON bridge.
//
// The input is the TOML text. Properties checked on accepted configs: every
// layer has a unique, dot-free name and a known type; a spec written back
// with model_to_toml parses again to the same layers (run folders store
// model.toml this way and `--model run/model.toml` must work); accepted
// training options survive to_json + train_options_from_json.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "fuzz_support.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/toml_json.h"
#include "tabby/config/train_options.h"

namespace {

// Every typed read a layer builder might make, on every key the layer holds:
// wrong types must be tabby::Errors too.
void read_every_param(const tabby::LayerSpec& layer) {
  for (auto it = layer.params.begin(); it != layer.params.end(); ++it) {
    const std::string& key = it.key();
    tabby::fuzz::refuses_only_with_tabby_errors("LayerSpec::get_double", [&] { layer.get_double(key, 0); });
    tabby::fuzz::refuses_only_with_tabby_errors("LayerSpec::get_int", [&] { layer.get_int(key, 0); });
    tabby::fuzz::refuses_only_with_tabby_errors("LayerSpec::get_bool", [&] { layer.get_bool(key, false); });
    tabby::fuzz::refuses_only_with_tabby_errors("LayerSpec::get_string", [&] { layer.get_string(key, ""); });
    tabby::fuzz::refuses_only_with_tabby_errors("LayerSpec::get_pair", [&] { layer.get_pair(key, {1, 1}); });
  }
}

void check_train_table(const nlohmann::json& table) {
  tabby::TrainOptions options;
  if (!tabby::fuzz::refuses_only_with_tabby_errors(
          "apply_train_table", [&] { tabby::apply_train_table(options, table, "fuzz.toml [train]"); })) {
    return;
  }
  if (!tabby::fuzz::refuses_only_with_tabby_errors("validate", [&] { tabby::validate(options); })) return;
  tabby::TrainOptions again;
  const bool reread = tabby::fuzz::refuses_only_with_tabby_errors(
      "train_options_from_json", [&] { again = tabby::train_options_from_json(tabby::to_json(options)); });
  TABBY_FUZZ_CHECK(reread, "valid training options could not be read back from their JSON");
  TABBY_FUZZ_CHECK(tabby::to_json(again) == tabby::to_json(options), "training options changed in a JSON round trip");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tabby::fuzz::silence_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tabby;
  const std::string text(reinterpret_cast<const char*>(data), size);

  // The [train] table on its own: most fuzzed files never get past the layer checks.
  nlohmann::json root;
  if (fuzz::refuses_only_with_tabby_errors("parse_toml_to_json", [&] { root = parse_toml_to_json(text, "fuzz.toml"); })) {
    TABBY_FUZZ_CHECK(root.is_object(), "a TOML document did not become a JSON object");
    if (root.contains("train")) check_train_table(root["train"]);
    fuzz::refuses_only_with_tabby_errors("json_to_toml", [&] { (void)json_to_toml(root); });
  }

  ModelSpec spec;
  if (!fuzz::refuses_only_with_tabby_errors("parse_model_toml", [&] { spec = parse_model_toml(text, "fuzz.toml"); })) {
    return 0;
  }
  TABBY_FUZZ_CHECK(!spec.layers.empty(), "accepted a model without layers");
  std::set<std::string> names;
  for (const LayerSpec& layer : spec.layers) {
    TABBY_FUZZ_CHECK(!layer.name.empty() && layer.name.find('.') == std::string::npos, "bad layer name");
    TABBY_FUZZ_CHECK(names.insert(layer.name).second, "duplicate layer name '" + layer.name + "'");
    bool known = false;
    for (const auto& type : known_layer_types()) known = known || type == layer.type;
    TABBY_FUZZ_CHECK(known, "accepted unknown layer type '" + layer.type + "'");
    read_every_param(layer);
  }
  (void)spec.backbone_index();

  std::string written;
  const bool serialized = fuzz::refuses_only_with_tabby_errors("model_to_toml", [&] { written = model_to_toml(spec); });
  TABBY_FUZZ_CHECK(serialized, "an accepted model could not be written as TOML");
  ModelSpec again;
  const bool reread = fuzz::refuses_only_with_tabby_errors("parse_model_toml (round trip)",
                                                           [&] { again = parse_model_toml(written, "model.toml"); });
  TABBY_FUZZ_CHECK(reread, "model_to_toml wrote a file parse_model_toml refuses:\n" + written);
  TABBY_FUZZ_CHECK(again.layers.size() == spec.layers.size(), "layer count changed in a TOML round trip");
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    TABBY_FUZZ_CHECK(again.layers[i].type == spec.layers[i].type && again.layers[i].name == spec.layers[i].name &&
                         again.layers[i].params == spec.layers[i].params,
                     "layer " + std::to_string(i + 1) + " changed in a TOML round trip:\n" + written);
  }
  return 0;
}
