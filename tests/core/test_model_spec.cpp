// Model configs (TOML): every layer kind and key parses to the spec the
// engine builds from, presets are the tutorials' models, the backbone
// shorthand expands to explicit layers, and every mistake is a tabby::Error
// that names the file (and the layer) instead of a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "support/test_support.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/presets.h"
#include "tabby/util/error.h"

namespace tabby {
namespace {

using nlohmann::json;

// The message of the tabby::Error that parsing `text` as "model.toml" throws;
// "" when it parses, "<other exception>" when something else escapes.
std::string model_spec_error(const std::string& text) {
  try {
    parse_model_toml(text, "model.toml");
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception> ") + e.what();
  }
  return "";
}

std::string layer(const std::string& type, const std::string& body = "") {
  return "[[layers]]\ntype = \"" + type + "\"\n" + body;
}

std::vector<std::string> types_of(const ModelSpec& spec) {
  std::vector<std::string> out;
  for (const auto& l : spec.layers) out.push_back(l.type);
  return out;
}

std::vector<std::string> names_of(const ModelSpec& spec) {
  std::vector<std::string> out;
  for (const auto& l : spec.layers) out.push_back(l.name);
  return out;
}

// One of every layer kind with every key it accepts.
const char* kEveryLayer = R"toml(
name = "everything"
description = "one of each"
[[layers]]
type = "Rescaling"
scale = 0.5
offset = -1.0
[[layers]]
type = "Normalization"
mean = [0.1, 0.2, 0.3]
std = [0.4, 0.5, 0.6]
scale = 1.0
[[layers]]
type = "RandomFlip"
mode = "vertical"
[[layers]]
type = "RandomRotation"
factor = [-0.1, 0.2]
fill_mode = "constant"
[[layers]]
type = "RandomZoom"
height_factor = 0.2
width_factor = [-0.1, 0.1]
fill_mode = "nearest"
[[layers]]
type = "RandomTranslation"
height_factor = 0.1
width_factor = 0.15
fill_mode = "reflect"
[[layers]]
type = "RandomContrast"
factor = 0.3
[[layers]]
type = "Conv2D"
filters = 16
kernel_size = [3, 5]
strides = 2
padding = "same"
activation = "relu"
use_bias = false
[[layers]]
type = "MaxPooling2D"
pool_size = [2, 3]
strides = [1, 2]
padding = "same"
[[layers]]
type = "AveragePooling2D"
pool_size = 2
strides = 2
padding = "valid"
[[layers]]
type = "BatchNormalization"
momentum = 0.9
epsilon = 0.001
[[layers]]
type = "Activation"
activation = "tanh"
[[layers]]
type = "GlobalMaxPooling2D"
[[layers]]
type = "Dense"
units = 8
activation = "sigmoid"
use_bias = true
[[layers]]
type = "Dropout"
rate = 0.25
[[layers]]
type = "Dense"
[train]
epochs = 3
lr = 0.01
)toml";

TEST(ModelSpec, KnownLayerTypesAreTheKerasVocabularyAndResidualBlock) {
  const std::set<std::string> expected = {
      "Rescaling",       "Normalization",     "RandomFlip",       "RandomRotation",         "RandomZoom",
      "RandomTranslation", "RandomContrast",  "Conv2D",           "MaxPooling2D",           "AveragePooling2D",
      "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten",  "Dense",                  "Dropout",
      "BatchNormalization", "Activation",     "Backbone",         "RandomResizedCrop",      "RandomColorJitter",
      "TrivialAugmentWide", "RandAugment",   "ResidualBlock"};
  const auto& known = known_layer_types();
  EXPECT_EQ(std::set<std::string>(known.begin(), known.end()), expected);
  EXPECT_EQ(known.size(), expected.size());
  for (const char* t : {"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                        "RandomResizedCrop", "RandomColorJitter", "TrivialAugmentWide", "RandAugment"}) {
    EXPECT_TRUE(is_augmentation_layer(t)) << t;
  }
  for (const char* t : {"RandomColorJitter", "TrivialAugmentWide", "RandAugment"}) EXPECT_TRUE(takes_value_range(t)) << t;
  for (const char* t : {"RandomFlip", "RandomResizedCrop", "Rescaling"}) EXPECT_FALSE(takes_value_range(t)) << t;
  for (const char* t : {"Rescaling", "Conv2D", "Dense", "Dropout", "BatchNormalization", "ResidualBlock", "Backbone"}) {
    EXPECT_FALSE(is_augmentation_layer(t)) << t;
  }
}

TEST(ModelSpec, EveryLayerKindAndKeyParses) {
  ModelSpec spec = parse_model_toml(kEveryLayer, "everything.toml");
  EXPECT_EQ(spec.name, "everything");
  EXPECT_EQ(spec.source, "everything.toml");
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"Rescaling", "Normalization", "RandomFlip", "RandomRotation",
                                                      "RandomZoom", "RandomTranslation", "RandomContrast", "Conv2D",
                                                      "MaxPooling2D", "AveragePooling2D", "BatchNormalization",
                                                      "Activation", "GlobalMaxPooling2D", "Dense", "Dropout",
                                                      "Dense"}));
  EXPECT_FALSE(spec.backbone_index().has_value());

  const LayerSpec& rescale = spec.layers[0];
  EXPECT_DOUBLE_EQ(rescale.get_double("scale", 0), 0.5);
  EXPECT_DOUBLE_EQ(rescale.get_double("offset", 0), -1.0);
  EXPECT_EQ(spec.layers[1].params["std"], json({0.4, 0.5, 0.6}));
  EXPECT_EQ(spec.layers[2].get_string("mode", ""), "vertical");
  EXPECT_EQ(spec.layers[3].params["factor"], json({-0.1, 0.2}));
  EXPECT_EQ(spec.layers[3].get_string("fill_mode", ""), "constant");
  EXPECT_EQ(spec.layers[4].params["width_factor"], json({-0.1, 0.1}));
  EXPECT_DOUBLE_EQ(spec.layers[5].get_double("width_factor", 0), 0.15);
  EXPECT_DOUBLE_EQ(spec.layers[6].get_double("factor", 0), 0.3);

  const LayerSpec& conv = spec.layers[7];
  EXPECT_EQ(conv.get_int("filters", 0), 16);
  EXPECT_EQ(conv.get_pair("kernel_size", {0, 0}), (std::pair<int64_t, int64_t>{3, 5}));
  EXPECT_EQ(conv.get_pair("strides", {0, 0}), (std::pair<int64_t, int64_t>{2, 2}));
  EXPECT_EQ(conv.get_string("padding", ""), "same");
  EXPECT_EQ(conv.get_string("activation", ""), "relu");
  EXPECT_FALSE(conv.get_bool("use_bias", true));

  EXPECT_EQ(spec.layers[8].get_pair("pool_size", {0, 0}), (std::pair<int64_t, int64_t>{2, 3}));
  EXPECT_EQ(spec.layers[8].get_pair("strides", {0, 0}), (std::pair<int64_t, int64_t>{1, 2}));
  EXPECT_EQ(spec.layers[9].get_string("padding", ""), "valid");
  EXPECT_DOUBLE_EQ(spec.layers[10].get_double("momentum", 0), 0.9);
  EXPECT_DOUBLE_EQ(spec.layers[10].get_double("epsilon", 0), 0.001);
  EXPECT_EQ(spec.layers[11].get_string("activation", ""), "tanh");
  EXPECT_TRUE(spec.layers[12].params.empty());
  EXPECT_EQ(spec.layers[13].get_int("units", 0), 8);
  EXPECT_DOUBLE_EQ(spec.layers[14].get_double("rate", 0), 0.25);
  // The output Dense may leave out `units` (one per class).
  EXPECT_FALSE(spec.layers[15].has("units"));

  EXPECT_EQ(spec.train["epochs"], 3);
  EXPECT_DOUBLE_EQ(spec.train["lr"].get<double>(), 0.01);
}

TEST(ModelSpec, LayersGetKerasStyleNames) {
  ModelSpec spec = parse_model_toml(kEveryLayer, "everything.toml");
  EXPECT_EQ(names_of(spec),
            (std::vector<std::string>{"rescaling", "normalization", "random_flip", "random_rotation", "random_zoom",
                                      "random_translation", "random_contrast", "conv2d", "max_pooling2d",
                                      "average_pooling2d", "batch_normalization", "activation",
                                      "global_max_pooling2d", "dense", "dropout", "dense_1"}));

  // Explicit names are kept, and automatic ones step around them.
  ModelSpec named = parse_model_toml(layer("Conv2D", "filters = 4\nname = \"conv2d_1\"\n") +
                                         layer("Conv2D", "filters = 4\n") + layer("Conv2D", "filters = 4\n") +
                                         layer("Flatten") + layer("Dense", "name = \"head\"\n"),
                                     "named.toml");
  EXPECT_EQ(names_of(named), (std::vector<std::string>{"conv2d_1", "conv2d", "conv2d_2", "flatten", "head"}));
  // Without a `name` key the file name is the model's name.
  EXPECT_EQ(named.name, "named");
}

TEST(ModelSpec, TypedReadsCheckTheValueType) {
  LayerSpec l;
  l.type = "Conv2D";
  l.name = "conv2d_3";
  l.params = {{"i", 3}, {"d", 0.5}, {"b", true}, {"s", "same"}, {"pair", {2, 4}}, {"bad_pair", {2, 4, 6}},
              {"float_pair", {1.5, 2}}};
  EXPECT_EQ(l.get_int("i", 0), 3);
  EXPECT_DOUBLE_EQ(l.get_double("i", 0), 3.0);  // integers are numbers too
  EXPECT_DOUBLE_EQ(l.get_double("d", 0), 0.5);
  EXPECT_TRUE(l.get_bool("b", false));
  EXPECT_EQ(l.get_string("s", ""), "same");
  EXPECT_EQ(l.get_pair("i", {0, 0}), (std::pair<int64_t, int64_t>{3, 3}));
  EXPECT_EQ(l.get_pair("pair", {0, 0}), (std::pair<int64_t, int64_t>{2, 4}));
  // Absent keys give the fallback.
  EXPECT_EQ(l.get_int("missing", 7), 7);
  EXPECT_DOUBLE_EQ(l.get_double("missing", 1.25), 1.25);
  EXPECT_FALSE(l.get_bool("missing", false));
  EXPECT_EQ(l.get_string("missing", "valid"), "valid");
  EXPECT_EQ(l.get_pair("missing", {5, 6}), (std::pair<int64_t, int64_t>{5, 6}));

  auto message = [](auto&& read) {
    try {
      read();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string int_msg = message([&] { l.get_int("d", 0); });
  EXPECT_NE(int_msg.find("conv2d_3"), std::string::npos) << int_msg;
  EXPECT_NE(int_msg.find("`d` must be an integer"), std::string::npos) << int_msg;
  EXPECT_NE(message([&] { l.get_double("s", 0); }).find("`s` must be a number"), std::string::npos);
  EXPECT_NE(message([&] { l.get_bool("i", false); }).find("`i` must be true or false"), std::string::npos);
  EXPECT_NE(message([&] { l.get_string("b", ""); }).find("`b` must be a string"), std::string::npos);
  EXPECT_NE(message([&] { l.get_pair("bad_pair", {0, 0}); }).find("[height, width]"), std::string::npos);
  EXPECT_NE(message([&] { l.get_pair("float_pair", {0, 0}); }).find("[height, width]"), std::string::npos);
  EXPECT_NE(message([&] { l.get_pair("s", {0, 0}); }).find("`s` must be an integer or [height, width]"),
            std::string::npos);
}

// --- presets --------------------------------------------------------------

TEST(ModelSpecPresets, TutorialCnnIsTheTutorialsFirstModel) {
  ModelSpec spec = resolve_model("tutorial-cnn");
  EXPECT_EQ(spec.name, "tutorial-cnn");
  EXPECT_NE(spec.source.find("tutorial-cnn"), std::string::npos);
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D",
                                                      "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"}));
  const int64_t filters[] = {32, 64, 128};
  for (int i = 0; i < 3; ++i) {
    const LayerSpec& conv = spec.layers[2 * i];
    EXPECT_EQ(conv.get_int("filters", 0), filters[i]);
    EXPECT_EQ(conv.get_pair("kernel_size", {0, 0}), (std::pair<int64_t, int64_t>{3, 3}));
    EXPECT_EQ(conv.get_string("padding", "valid"), "valid");
    EXPECT_EQ(conv.get_string("activation", ""), "relu");
    EXPECT_EQ(spec.layers[2 * i + 1].get_pair("pool_size", {0, 0}), (std::pair<int64_t, int64_t>{2, 2}));
  }
  EXPECT_EQ(spec.layers[7].get_int("units", 0), 128);
  EXPECT_EQ(spec.layers[7].get_string("activation", ""), "relu");
  EXPECT_DOUBLE_EQ(spec.layers[8].get_double("rate", 0), 0.5);
  EXPECT_FALSE(spec.layers[9].has("units"));  // one unit per class
  EXPECT_EQ(spec.train.value("optimizer", ""), "adam");
}

TEST(ModelSpecPresets, TutorialCnnAugmentedRescalesAugmentsAndPadsSame) {
  ModelSpec spec = resolve_model("tutorial-cnn-augmented");
  EXPECT_EQ(types_of(spec),
            (std::vector<std::string>{"Rescaling", "RandomFlip", "RandomRotation", "Conv2D", "MaxPooling2D", "Conv2D",
                                      "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout",
                                      "Dense"}));
  EXPECT_NEAR(spec.layers[0].get_double("scale", 0), 1.0 / 127.5, 1e-12);
  EXPECT_DOUBLE_EQ(spec.layers[0].get_double("offset", 0), -1.0);
  EXPECT_EQ(spec.layers[1].get_string("mode", ""), "horizontal");
  EXPECT_DOUBLE_EQ(spec.layers[2].get_double("factor", 0), 0.1);
  const int64_t filters[] = {64, 128, 256};
  for (int i = 0; i < 3; ++i) {
    const LayerSpec& conv = spec.layers[3 + 2 * i];
    EXPECT_EQ(conv.get_int("filters", 0), filters[i]);
    EXPECT_EQ(conv.get_string("padding", ""), "same");
    EXPECT_EQ(conv.get_string("activation", ""), "relu");
  }
  EXPECT_EQ(spec.layers[10].get_int("units", 0), 256);
  EXPECT_DOUBLE_EQ(spec.layers[11].get_double("rate", 0), 0.5);
}

TEST(ModelSpecPresets, EveryPresetResolvesAndHasADescription) {
  const auto names = preset_names();
  for (const char* expected : {"tutorial-cnn", "tutorial-cnn-flip-rotate", "tutorial-cnn-augmented",
                               "tutorial-mobilenet_v2", "tutorial-mobilenet_v3_large", "animals-cnn"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
  for (const auto& arch : backbone_arch_names()) {
    EXPECT_NE(std::find(names.begin(), names.end(), arch), names.end()) << arch;
  }
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(preset_toml(name).has_value());
    EXPECT_FALSE(preset_description(name).empty());
    ModelSpec spec = resolve_model(name);
    EXPECT_EQ(spec.name, name);
    EXPECT_FALSE(spec.layers.empty());
    EXPECT_EQ(spec.layers.back().type, "Dense");
  }
  EXPECT_FALSE(preset_toml("no-such-preset").has_value());
  EXPECT_EQ(preset_description("no-such-preset"), "");
}

TEST(ModelSpecPresets, BackbonePresetsAreTorchvisionArchitecturesWithAHead) {
  EXPECT_EQ(backbone_arch_names(),
            (std::vector<std::string>{"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "resnet18",
                                      "resnet50", "vgg16", "squeezenet1_1", "efficientnet_b0", "efficientnet_b1",
                                      "efficientnet_b2", "efficientnet_b3", "efficientnet_v2_s", "convnext_tiny",
                                      "regnet_y_400mf", "vit_b_16"}));
  for (const auto& arch : backbone_arch_names()) {
    SCOPED_TRACE(arch);
    ModelSpec spec = resolve_model(arch);
    EXPECT_EQ(types_of(spec), (std::vector<std::string>{"Normalization", "Backbone", "GlobalAveragePooling2D",
                                                        "Dropout", "Dense"}));
    ASSERT_TRUE(spec.backbone_index().has_value());
    EXPECT_EQ(*spec.backbone_index(), 1u);
    const LayerSpec& bb = spec.layers[1];
    EXPECT_EQ(bb.name, arch);
    EXPECT_EQ(bb.get_string("arch", ""), arch);
    EXPECT_EQ(bb.get_string("weights", ""), "imagenet");
    EXPECT_FALSE(bb.get_bool("include_top", true));
    EXPECT_DOUBLE_EQ(spec.layers[3].get_double("rate", 0), 0.2);
  }
}

TEST(ModelSpecPresets, TutorialMobileNetIsFrozenWithAugmentationInFront) {
  ModelSpec spec = resolve_model("tutorial-mobilenet_v2");
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"RandomFlip", "RandomRotation", "Normalization", "Backbone",
                                                      "GlobalAveragePooling2D", "Dropout", "Dense"}));
  const LayerSpec& bb = spec.layers[3];
  EXPECT_EQ(bb.get_string("arch", ""), "mobilenet_v2");
  EXPECT_FALSE(bb.get_bool("trainable", true));
  EXPECT_DOUBLE_EQ(spec.layers[1].get_double("factor", 0), 0.1);
}

TEST(ModelSpecPresets, ResolveModelReadsAFileAndRejectsUnknownNames) {
  auto dir = testing::scratch_dir("model_spec_resolve");
  const auto file = dir / "small.toml";
  testing::write_bytes(file, layer("Flatten") + layer("Dense", "activation = \"softmax\"\n"));
  ModelSpec spec = resolve_model(file.string());
  EXPECT_EQ(spec.name, "small");
  EXPECT_EQ(spec.source, file.string());
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"Flatten", "Dense"}));

  try {
    resolve_model("tutorial-cn");
    FAIL() << "an unknown model name was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("tutorial-cn"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("tutorial-cnn"), std::string::npos) << e.hint();  // lists the presets
  }
  // A missing file passed to load_model_file names the file.
  try {
    load_model_file(dir / "absent.toml");
    FAIL() << "a missing file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("absent.toml"), std::string::npos) << e.what();
  }
}

TEST(ModelSpecPresets, ModelToTomlRoundTripsEveryPresetAndKey) {
  std::vector<ModelSpec> specs = {parse_model_toml(kEveryLayer, "everything.toml")};
  for (const auto& name : preset_names()) specs.push_back(resolve_model(name));
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.name);
    const std::string text = model_to_toml(spec);
    ModelSpec back = parse_model_toml(text, "run/model.toml");
    EXPECT_EQ(back.name, spec.name);
    ASSERT_EQ(back.layers.size(), spec.layers.size()) << text;
    for (size_t i = 0; i < spec.layers.size(); ++i) {
      EXPECT_EQ(back.layers[i].type, spec.layers[i].type);
      EXPECT_EQ(back.layers[i].name, spec.layers[i].name);
      // Numbers compare by value: 1/127.5 must survive the text form exactly.
      EXPECT_EQ(back.layers[i].params, spec.layers[i].params) << text;
    }
    EXPECT_EQ(back.train, spec.train);
  }
}

TEST(ModelSpecPresets, ModelToTomlQuotesKeysThatAreNotBare) {
  ModelSpec spec = parse_model_toml(kEveryLayer, "everything.toml");
  const json odd = {{"two words", 1},
                    {"dotted.key", "x"},
                    {"", true},
                    {"quote\"back\\slash", 2.5},
                    {"tab\tdel\x7f", 3},
                    {"gr\u00f6\u00dfe", "\u00fc"},
                    {"nested", {{"inner key", 4}, {"plain", 5}}}};
  spec.train = odd;
  spec.train["epochs"] = 3;  // a bare key stays bare
  const std::string text = model_to_toml(spec);
  EXPECT_NE(text.find("\nepochs = 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n\"two words\" = 1\n"), std::string::npos) << text;
  const ModelSpec back = parse_model_toml(text, "run/model.toml");
  EXPECT_EQ(back.train, spec.train) << text;
  ASSERT_EQ(back.layers.size(), spec.layers.size());
  for (size_t i = 0; i < spec.layers.size(); ++i) EXPECT_EQ(back.layers[i].params, spec.layers[i].params);
}

// --- backbone shorthand ---------------------------------------------------

TEST(ModelSpecShorthand, BackboneAloneGetsImageNetPreprocessingPoolingAndAHead) {
  ModelSpec spec = parse_model_toml("backbone = \"resnet18\"\n", "transfer.toml");
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"Normalization", "Backbone", "GlobalAveragePooling2D",
                                                      "Dropout", "Dense"}));
  const LayerSpec& norm = spec.layers[0];
  EXPECT_EQ(norm.params["mean"], json({0.485, 0.456, 0.406}));
  EXPECT_EQ(norm.params["std"], json({0.229, 0.224, 0.225}));
  EXPECT_NEAR(norm.get_double("scale", 0), 1.0 / 255.0, 1e-15);
  const LayerSpec& bb = spec.layers[1];
  EXPECT_EQ(bb.name, "resnet18");
  EXPECT_EQ(bb.get_string("arch", ""), "resnet18");
  EXPECT_EQ(bb.get_string("weights", ""), "imagenet");
  EXPECT_FALSE(bb.get_bool("include_top", true));
  // Not frozen unless asked; bn_inference left to the engine's default.
  EXPECT_FALSE(bb.has("trainable"));
  EXPECT_FALSE(bb.has("bn_inference"));
  EXPECT_DOUBLE_EQ(spec.layers[3].get_double("rate", 0), 0.2);
  EXPECT_FALSE(spec.layers[4].has("units"));
  EXPECT_EQ(spec.name, "transfer");
}

TEST(ModelSpecShorthand, PreprocessingFollowsTheWeightsOrTheKey) {
  auto first_layer = [](const std::string& text) { return parse_model_toml(text, "m.toml").layers.front(); };
  // Weights trained from scratch: Keras' [-1, 1] scaling.
  LayerSpec tf = first_layer("backbone = \"mobilenet_v2\"\nweights = \"none\"\n");
  EXPECT_EQ(tf.type, "Rescaling");
  EXPECT_NEAR(tf.get_double("scale", 0), 1.0 / 127.5, 1e-15);
  EXPECT_DOUBLE_EQ(tf.get_double("offset", 0), -1.0);
  // A weights file is torchvision's: ImageNet mean/std.
  EXPECT_EQ(first_layer("backbone = \"mobilenet_v2\"\nweights = \"my.safetensors\"\n").type, "Normalization");
  EXPECT_EQ(first_layer("backbone = \"mobilenet_v2\"\npreprocessing = \"tf\"\n").type, "Rescaling");
  EXPECT_EQ(first_layer("backbone = \"mobilenet_v2\"\nweights = \"none\"\npreprocessing = \"imagenet\"\n").type,
            "Normalization");
  EXPECT_EQ(first_layer("backbone = \"mobilenet_v2\"\npreprocessing = \"none\"\n").type, "Backbone");
  EXPECT_EQ(first_layer("backbone = \"mobilenet_v2\"\npreprocessing = \"auto\"\n").type, "Normalization");
}

TEST(ModelSpecShorthand, FreezingPoolingAndTheHead) {
  ModelSpec spec = parse_model_toml(R"toml(
backbone = "mobilenet_v3_small"
weights = "none"
freeze_backbone = true
bn_inference = false
pooling = "max"
[[augment]]
type = "RandomFlip"
mode = "horizontal"
[[augment]]
type = "RandomRotation"
factor = 0.1
[[layers]]
type = "Dense"
units = 32
activation = "relu"
[[layers]]
type = "Dense"
units = 1
activation = "sigmoid"
[train]
fine_tune_last = 2
)toml",
                                    "head.toml");
  // Augmentation first, then preprocessing, the backbone, the pooling shorthand and the head as written.
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"RandomFlip", "RandomRotation", "Rescaling", "Backbone",
                                                      "GlobalMaxPooling2D", "Dense", "Dense"}));
  const LayerSpec& bb = spec.layers[3];
  EXPECT_FALSE(bb.get_bool("trainable", true));
  EXPECT_FALSE(bb.get_bool("bn_inference", true));
  EXPECT_EQ(bb.get_string("weights", ""), "none");
  EXPECT_EQ(spec.layers[6].get_int("units", 0), 1);
  EXPECT_EQ(spec.train["fine_tune_last"], 2);

  // freeze_backbone = false keeps it trainable, explicitly.
  ModelSpec open = parse_model_toml("backbone = \"resnet18\"\nfreeze_backbone = false\n", "m.toml");
  EXPECT_TRUE(open.layers[1].get_bool("trainable", false));

  // A head without `pooling` is taken as written: the user places the pooling.
  ModelSpec own = parse_model_toml("backbone = \"resnet18\"\n" + layer("GlobalAveragePooling2D") + layer("Dense"),
                                   "m.toml");
  EXPECT_EQ(types_of(own), (std::vector<std::string>{"Normalization", "Backbone", "GlobalAveragePooling2D", "Dense"}));
  ModelSpec none = parse_model_toml("backbone = \"resnet18\"\npooling = \"none\"\n" + layer("Flatten") + layer("Dense"),
                                    "m.toml");
  EXPECT_EQ(types_of(none), (std::vector<std::string>{"Normalization", "Backbone", "Flatten", "Dense"}));
}

TEST(ModelSpecShorthand, IncludeTopUsesTheBackbonesClassifier) {
  ModelSpec spec = parse_model_toml("backbone = \"squeezenet1_1\"\ninclude_top = true\n", "top.toml");
  EXPECT_EQ(types_of(spec), (std::vector<std::string>{"Normalization", "Backbone"}));
  EXPECT_TRUE(spec.layers[1].get_bool("include_top", false));
  const std::string msg = model_spec_error("backbone = \"squeezenet1_1\"\ninclude_top = true\n" + layer("Dense"));
  EXPECT_NE(msg.find("model.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("include_top"), std::string::npos) << msg;
}

TEST(ModelSpecShorthand, ExplicitBackboneLayerWorksToo) {
  ModelSpec spec = parse_model_toml(layer("Normalization", "mean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n") +
                                        layer("Backbone", "arch = \"resnet18\"\nweights = \"none\"\ntrainable = "
                                                          "false\nbn_inference = true\ninclude_top = false\n") +
                                        layer("GlobalAveragePooling2D") + layer("Dense"),
                                    "explicit.toml");
  ASSERT_TRUE(spec.backbone_index().has_value());
  EXPECT_EQ(*spec.backbone_index(), 1u);
  EXPECT_EQ(spec.layers[1].name, "backbone");
  EXPECT_FALSE(spec.layers[1].get_bool("trainable", true));
}

// --- mistakes -------------------------------------------------------------

struct BadModelCase {
  std::string what;
  std::string text;
  std::string expected;  // part of the message
};

TEST(ModelSpecErrors, EveryMistakeNamesTheFileAndTheProblem) {
  const std::vector<BadModelCase> cases = {
      {"toml syntax", "name = \"x\"\n[[layers]\ntype = \"Dense\"\n", "model.toml:2"},
      {"unterminated string", "name = \"x\n", "model.toml:1"},
      {"unknown layer type", layer("Conv3D", "filters = 3\n"), "unknown layer type 'Conv3D'"},
      {"lower-case layer type", layer("dense"), "unknown layer type 'dense'"},
      {"missing type", "[[layers]]\nunits = 3\n", "missing `type`"},
      {"type not a string", "[[layers]]\ntype = 3\n", "missing `type`"},
      {"unknown layer key", layer("Conv2D", "filters = 8\nkernel = 3\n"), "unknown key 'kernel'"},
      {"key of another layer", layer("Dense", "rate = 0.5\n"), "unknown key 'rate'"},
      {"key on a layer without settings", layer("Flatten", "units = 2\n") + layer("Dense"), "unknown key 'units'"},
      {"name not a string", layer("Dense", "name = 3\n"), "`name` must be a string"},
      {"layers not an array", "layers = 3\n", "`layers` must be an array"},
      {"layer not a table", "layers = [1, 2]\n", "expected a table"},
      {"train not a table", "train = 3\n" + layer("Dense"), "`train` must be a table"},
      {"unknown top-level key", "nmae = \"x\"\n" + layer("Dense"), "unknown top-level key 'nmae'"},
      {"no layers", "name = \"empty\"\n", "no layers"},
      {"duplicate names", layer("Dense", "units = 3\nname = \"d\"\n") + layer("Dense", "name = \"d\"\n"),
       "two layers are named 'd'"},
      {"dot in a name", layer("Dense", "name = \"a.b\"\n"), "contains '.'"},
      {"hidden Dense without units", layer("Flatten") + layer("Dense") + layer("Dense"), "needs `units`"},
      {"non-random layer in augment", "[[augment]]\ntype = \"Dense\"\n" + layer("Dense"), "[[augment]] holds 'Dense'"},
      {"two backbones",
       layer("Backbone", "arch = \"resnet18\"\n") + layer("Backbone", "arch = \"resnet18\"\nname = \"b2\"\n") +
           layer("Dense"),
       "at most one Backbone"},
      {"shorthand key without backbone", "freeze_backbone = true\n" + layer("Dense"), "`freeze_backbone` only applies"},
      {"pooling without backbone", "pooling = \"avg\"\n" + layer("Dense"), "`pooling` only applies"},
      {"backbone not a string", "backbone = 3\n", "`backbone` must be a string"},
      {"unknown backbone", "backbone = \"mobilenet\"\n", "unknown architecture \"mobilenet\""},
      {"Backbone layer without arch", layer("Backbone") + layer("GlobalAveragePooling2D") + layer("Dense"),
       "unknown architecture (no `arch`)"},
      {"unknown preprocessing", "backbone = \"resnet18\"\npreprocessing = \"caffe\"\n", "unknown preprocessing 'caffe'"},
      {"unknown pooling", "backbone = \"resnet18\"\npooling = \"mean\"\n", "unknown pooling 'mean'"},
      // Wrong value types of the shorthand keys are clear errors too, not library exceptions.
      {"freeze_backbone not a bool", "backbone = \"resnet18\"\nfreeze_backbone = \"yes\"\n", "freeze_backbone"},
      {"weights not a string", "backbone = \"resnet18\"\nweights = 1\n", "weights"},
      {"include_top not a bool", "backbone = \"resnet18\"\ninclude_top = 1\n", "include_top"},
      {"pooling not a string", "backbone = \"resnet18\"\npooling = 2\n", "pooling"},
      {"preprocessing not a string", "backbone = \"resnet18\"\npreprocessing = false\n", "preprocessing"},
      {"bn_inference not a bool", "backbone = \"resnet18\"\nbn_inference = \"no\"\n", "bn_inference"},
      {"model name not a string", "name = 5\n" + layer("Dense"), "name"},
  };
  for (const auto& c : cases) {
    const std::string msg = model_spec_error(c.text);
    EXPECT_EQ(msg.find("<other exception>"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find("model.toml"), std::string::npos) << c.what << ": '" << msg << "'";
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.what << ": got '" << msg << "'";
  }
}

TEST(ModelSpecErrors, ErrorsSayWhichLayerAndHowToFixIt) {
  try {
    parse_model_toml(layer("Flatten") + layer("Conv2D", "filters = 8\nkernal_size = 3\n") + layer("Dense"),
                     "cnn.toml");
    FAIL() << "an unknown key was accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cnn.toml: layer 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Conv2D"), std::string::npos) << msg;
    EXPECT_NE(e.hint().find("kernel_size"), std::string::npos) << e.hint();  // the allowed keys
  }
  try {
    parse_model_toml(layer("Conv2d", "filters = 8\n"), "cnn.toml");
    FAIL() << "an unknown layer type was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("Conv2D"), std::string::npos) << e.hint();  // the known types
  }
  try {
    parse_model_toml(layer("Flatten", "units = 3\n"), "cnn.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("no settings"), std::string::npos) << e.hint();
  }
  try {
    parse_model_toml("[[layers]\n", "cnn.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cnn.toml:1:"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
}

TEST(ModelSpecErrors, BadFileOnDiskNamesThePath) {
  auto dir = testing::scratch_dir("model_spec_bad_file");
  const auto file = dir / "broken.toml";
  testing::write_bytes(file, "[[layers]]\ntype = \"Dense\"\nunits = \n");
  try {
    resolve_model(file.string());
    FAIL() << "a broken file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string() + ":3"), std::string::npos) << e.what();
  }
}

// The drop probability of the backbone's residual branches (EfficientNet,
// ConvNeXt) reaches the Backbone layer; unset, the registry's default applies.
TEST(ModelSpecPresets, StochasticDepthReachesTheBackboneLayer) {
  ModelSpec spec = parse_model_toml("backbone = \"convnext_tiny\"\nstochastic_depth = 0.3\n[[layers]]\ntype = \"Dense\"\n",
                                    "sd.toml");
  ASSERT_TRUE(spec.backbone_index().has_value());
  EXPECT_DOUBLE_EQ(spec.layers[*spec.backbone_index()].get_double("stochastic_depth", -1), 0.3);
  EXPECT_FALSE(resolve_model("convnext_tiny").layers[1].params.contains("stochastic_depth"));
  EXPECT_THROW(parse_model_toml("backbone = \"convnext_tiny\"\nstochastic_depth = \"high\"\n", "bad.toml"), Error);
  EXPECT_THROW(parse_model_toml("stochastic_depth = 0.1\n[[layers]]\ntype = \"Dense\"\n", "bad.toml"), Error);
}

}  // namespace
}  // namespace tabby
