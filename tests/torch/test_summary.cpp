// model.summary(): per-layer output shapes and parameter counts equal to the
// figures Keras prints for the tutorials' models (tutorial-cnn at 150x150:
// 896 / 18,496 / 73,856 / 4,735,104 / 258 = 4,828,610; MobileNetV2 at 160
// frozen: 2,257,984 non-trainable), the table text, its JSON form, and the
// same through `tabby summary`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <sstream>

#include "support/test_support.h"
#include "tabby/config/model_spec.h"
#include "tabby/nn/network.h"
#include "tabby/nn/summary.h"

namespace tabby::nn {
namespace {

using nlohmann::json;
using testing::lines_of;

struct Row {
  std::string name, type, shape;
  int64_t params;
};

void expect_rows(const ModelSummary& s, const std::vector<Row>& rows) {
  ASSERT_EQ(s.rows.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(rows[i].name);
    EXPECT_EQ(s.rows[i].name, rows[i].name);
    EXPECT_EQ(s.rows[i].type, rows[i].type);
    EXPECT_EQ(keras_shape(s.rows[i].shape), rows[i].shape);
    EXPECT_EQ(s.rows[i].params, rows[i].params);
  }
}

ModelSummary summary_of(const std::string& model, int64_t classes, int64_t size, bool freeze = false) {
  ModelSpec spec = resolve_model(model);
  if (freeze) spec.layers[*spec.backbone_index()].params["trainable"] = false;
  Network net(spec, classes, size, size);
  return summarize(*net);
}

// Display columns of a UTF-8 line (box-drawing characters are one column).
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// The table line that holds `needle`, or "".
std::string line_with(const std::string& text, const std::string& needle) {
  for (const auto& line : lines_of(text)) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return "";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const std::vector<Row> kTutorialCnnRows = {
    {"conv2d", "Conv2D", "(None, 148, 148, 32)", 896},
    {"max_pooling2d", "MaxPooling2D", "(None, 74, 74, 32)", 0},
    {"conv2d_1", "Conv2D", "(None, 72, 72, 64)", 18496},
    {"max_pooling2d_1", "MaxPooling2D", "(None, 36, 36, 64)", 0},
    {"conv2d_2", "Conv2D", "(None, 34, 34, 128)", 73856},
    {"max_pooling2d_2", "MaxPooling2D", "(None, 17, 17, 128)", 0},
    {"flatten", "Flatten", "(None, 36992)", 0},
    {"dense", "Dense", "(None, 128)", 4735104},
    {"dropout", "Dropout", "(None, 128)", 0},
    {"dense_1", "Dense", "(None, 2)", 258},
};

TEST(Summary, TutorialCnnMatchesKeras) {
  ModelSummary s = summary_of("tutorial-cnn", 2, 150);
  EXPECT_EQ(s.model_name, "tutorial-cnn");
  expect_rows(s, kTutorialCnnRows);
  EXPECT_EQ(s.total, 4828610);
  EXPECT_EQ(s.trainable, 4828610);
  EXPECT_EQ(s.non_trainable, 0);
  for (const auto& r : s.rows) EXPECT_EQ(r.trainable, r.params) << r.name;
  EXPECT_NE(s.output.find("2 units"), std::string::npos) << s.output;
  EXPECT_NE(s.output.find("softmax"), std::string::npos) << s.output;
}

TEST(Summary, TutorialCnnAugmentedMatchesKeras) {
  ModelSummary s = summary_of("tutorial-cnn-augmented", 2, 150);
  expect_rows(s, {
                     {"rescaling", "Rescaling", "(None, 150, 150, 3)", 0},
                     {"random_flip", "RandomFlip", "(None, 150, 150, 3)", 0},
                     {"random_rotation", "RandomRotation", "(None, 150, 150, 3)", 0},
                     {"conv2d", "Conv2D", "(None, 150, 150, 64)", 1792},
                     {"max_pooling2d", "MaxPooling2D", "(None, 75, 75, 64)", 0},
                     {"conv2d_1", "Conv2D", "(None, 75, 75, 128)", 73856},
                     {"max_pooling2d_1", "MaxPooling2D", "(None, 37, 37, 128)", 0},
                     {"conv2d_2", "Conv2D", "(None, 37, 37, 256)", 295168},
                     {"max_pooling2d_2", "MaxPooling2D", "(None, 18, 18, 256)", 0},
                     {"flatten", "Flatten", "(None, 82944)", 0},
                     {"dense", "Dense", "(None, 256)", 21233920},
                     {"dropout", "Dropout", "(None, 256)", 0},
                     {"dense_1", "Dense", "(None, 2)", 514},
                 });
  EXPECT_EQ(s.total, 21605250);
  EXPECT_EQ(s.trainable, 21605250);
  EXPECT_EQ(s.non_trainable, 0);
}

TEST(Summary, ClassCountAndImageSizeChangeTheHead) {
  // 5 classes at 180x180: 178 -> 89 -> 87 -> 43 -> 41 -> 20; flatten 20*20*128 = 51,200.
  ModelSummary s = summary_of("tutorial-cnn", 5, 180);
  EXPECT_EQ(keras_shape(s.rows[6].shape), "(None, 51200)");
  EXPECT_EQ(s.rows[7].params, 51200 * 128 + 128);
  EXPECT_EQ(s.rows[9].params, 128 * 5 + 5);
  EXPECT_EQ(s.total, 896 + 18496 + 73856 + 51200 * 128 + 128 + 645);
}

TEST(Summary, FrozenMobileNetV2At160MatchesKerasTransferLearningTutorial) {
  // The tutorial's head: global average pooling, Dropout 0.2, Dense(1) on logits.
  ModelSpec spec = parse_model_toml(R"toml(
backbone = "mobilenet_v2"
freeze_backbone = true
pooling = "avg"
[[layers]]
type = "Dropout"
rate = 0.2
[[layers]]
type = "Dense"
units = 1
)toml",
                                    "transfer.toml");
  Network net(spec, 2, 160, 160);
  ModelSummary s = summarize(*net);
  expect_rows(s, {
                     {"normalization", "Normalization", "(None, 160, 160, 3)", 0},
                     {"mobilenet_v2", "Functional", "(None, 5, 5, 1280)", 2257984},
                     {"global_average_pooling2d", "GlobalAveragePooling2D", "(None, 1280)", 0},
                     {"dropout", "Dropout", "(None, 1280)", 0},
                     {"dense", "Dense", "(None, 1)", 1281},
                 });
  EXPECT_EQ(s.total, 2259265);
  EXPECT_EQ(s.trainable, 1281);
  EXPECT_EQ(s.non_trainable, 2257984);
  EXPECT_EQ(s.rows[1].trainable, 0);
  EXPECT_NE(s.output.find("sigmoid (binary"), std::string::npos) << s.output;

  // Unfrozen: the backbone's weights train; batch-norm statistics never do.
  net->set_backbone_trainable_blocks(-1, false);
  ModelSummary open = summarize(*net);
  EXPECT_EQ(open.total, 2259265);
  EXPECT_EQ(open.non_trainable, 34112);
  EXPECT_EQ(open.trainable, 2223872 + 1281);

  // Fine-tuning the last unit (features.18: 1x1 conv 320 -> 1280 and its batch norm).
  net->set_backbone_trainable_blocks(1, true);
  ModelSummary tuned = summarize(*net);
  EXPECT_EQ(tuned.total, 2259265);
  EXPECT_EQ(tuned.trainable, 320 * 1280 + 2 * 1280 + 1281);
  EXPECT_EQ(tuned.trainable + tuned.non_trainable, tuned.total);
  EXPECT_EQ(tuned.rows[1].trainable, 320 * 1280 + 2 * 1280);
  // The table shows the partly trainable backbone.
  EXPECT_NE(line_with(format_summary(tuned), "mobilenet_v2 (Functional)").find("(412,160 trainable)"),
            std::string::npos)
      << format_summary(tuned);
}

TEST(Summary, MobileNetV2PresetFrozenWithASoftmaxHead) {
  ModelSummary frozen = summary_of("mobilenet_v2", 2, 160, /*freeze=*/true);
  EXPECT_EQ(frozen.trainable, 1280 * 2 + 2);
  EXPECT_EQ(frozen.non_trainable, 2257984);
  EXPECT_EQ(frozen.total, 2257984 + 2562);
  ModelSummary open = summary_of("mobilenet_v2", 2, 160);
  EXPECT_EQ(open.trainable, 2223872 + 2562);
  EXPECT_EQ(open.non_trainable, 34112);
}

TEST(Summary, TableTextLooksLikeKeras) {
  const std::string text = format_summary(summary_of("tutorial-cnn", 2, 150));
  auto lines = lines_of(text);
  ASSERT_GT(lines.size(), 5u);
  EXPECT_EQ(lines[0], "Model: \"tutorial-cnn\"");
  const std::string header = line_with(text, "Layer (type)");
  EXPECT_NE(header.find("Output Shape"), std::string::npos);
  EXPECT_NE(header.find("Param #"), std::string::npos);
  for (const auto& r : kTutorialCnnRows) {
    SCOPED_TRACE(r.name);
    const std::string line = line_with(text, r.name + " (" + r.type + ")");
    ASSERT_FALSE(line.empty()) << text;
    EXPECT_NE(line.find(r.shape), std::string::npos) << line;
  }
  // Counts right-aligned, with thousands separators.
  EXPECT_TRUE(ends_with(line_with(text, "conv2d (Conv2D)"), " 896 │"));
  EXPECT_TRUE(ends_with(line_with(text, "dense (Dense)"), " 4,735,104 │"));
  EXPECT_TRUE(ends_with(line_with(text, "flatten (Flatten)"), " 0 │"));
  EXPECT_NE(text.find(" Total params: 4,828,610 (18.42 MB)\n"), std::string::npos) << text;
  EXPECT_NE(text.find(" Trainable params: 4,828,610 (18.42 MB)\n"), std::string::npos);
  EXPECT_NE(text.find(" Non-trainable params: 0 (0.00 B)\n"), std::string::npos);
  // Every line of the box has the same width.
  size_t width = 0;
  for (const auto& line : lines) {
    if (line.empty() || (line.rfind("┏", 0) != 0 && line.rfind("┃", 0) != 0 && line.rfind("┡", 0) != 0 &&
                         line.rfind("│", 0) != 0 && line.rfind("├", 0) != 0 && line.rfind("└", 0) != 0)) {
      continue;
    }
    if (width == 0) width = columns(line);
    EXPECT_EQ(columns(line), width) << line;
  }
  EXPECT_GT(width, 0u);
}

TEST(Summary, JsonAndFormattingHelpers) {
  json j = summary_to_json(summary_of("tutorial-cnn", 2, 150));
  EXPECT_EQ(j["model"], "tutorial-cnn");
  EXPECT_EQ(j["total_params"], 4828610);
  EXPECT_EQ(j["trainable_params"], 4828610);
  EXPECT_EQ(j["non_trainable_params"], 0);
  ASSERT_EQ(j["layers"].size(), 10u);
  EXPECT_EQ(j["layers"][0]["name"], "conv2d");
  EXPECT_EQ(j["layers"][0]["type"], "Conv2D");
  EXPECT_EQ(j["layers"][0]["output_shape"], json({148, 148, 32}));  // HWC, as Keras
  EXPECT_EQ(j["layers"][0]["params"], 896);
  EXPECT_EQ(j["layers"][6]["output_shape"], json({36992}));

  EXPECT_EQ(keras_shape({32, 148, 100}), "(None, 148, 100, 32)");
  EXPECT_EQ(keras_shape({128}), "(None, 128)");
  EXPECT_EQ(param_bytes_text(0), "0.00 B");
  EXPECT_EQ(param_bytes_text(100), "400.00 B");
  EXPECT_EQ(param_bytes_text(1281), "5.00 KB");
  EXPECT_EQ(param_bytes_text(4828610), "18.42 MB");
  EXPECT_EQ(param_bytes_text(21605250), "82.42 MB");
  EXPECT_EQ(param_bytes_text(300000000), "1.12 GB");
}

// --- through the binary ----------------------------------------------------

TEST(SummaryCli, PrintsTheKerasTable) {
  auto r = testing::run_tabby({"summary", "--model", "tutorial-cnn", "--image-size", "150"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_of(r.out).front(), "Model: \"tutorial-cnn\"");
  for (const auto& row : kTutorialCnnRows) {
    const std::string line = line_with(r.out, row.name + " (" + row.type + ")");
    ASSERT_FALSE(line.empty()) << r.out;
    EXPECT_NE(line.find(row.shape), std::string::npos) << line;
  }
  EXPECT_TRUE(ends_with(line_with(r.out, "conv2d_1 (Conv2D)"), " 18,496 │"));
  EXPECT_TRUE(ends_with(line_with(r.out, "conv2d_2 (Conv2D)"), " 73,856 │"));
  EXPECT_TRUE(ends_with(line_with(r.out, "dense (Dense)"), " 4,735,104 │"));
  EXPECT_TRUE(ends_with(line_with(r.out, "dense_1 (Dense)"), " 258 │"));
  EXPECT_NE(r.out.find("Total params: 4,828,610"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Trainable params: 4,828,610"), std::string::npos);
  EXPECT_NE(r.out.find("Non-trainable params: 0"), std::string::npos);
}

TEST(SummaryCli, JsonWithAFrozenBackbone) {
  // (Counts for other class numbers and fine-tuning are checked in-process above.)
  auto r = testing::run_tabby(
      {"summary", "--model", "mobilenet_v2", "--image-size", "160", "--freeze-backbone", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["model"], "mobilenet_v2");
  EXPECT_EQ(j["trainable_params"], 1280 * 2 + 2);
  EXPECT_EQ(j["non_trainable_params"], 2257984);
  EXPECT_EQ(j["total_params"], 2257984 + 2562);
  ASSERT_EQ(j["layers"].size(), 5u);
  EXPECT_EQ(j["layers"][1]["type"], "Functional");
  EXPECT_EQ(j["layers"][1]["output_shape"], json({5, 5, 1280}));
  EXPECT_EQ(j["layers"][1]["trainable_params"], 0);
}

// Without --image-size a backbone model takes its backbone's own size
// (torchvision's crop for its weights): 300 for EfficientNet-B3, 300 / 32 -> 10.
TEST(SummaryCli, ABackboneModelDefaultsToTheBackbonesImageSize) {
  auto r = testing::run_tabby({"summary", "--model", "efficientnet_b3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["layers"][1]["output_shape"], json({10, 10, 1536}));
}

}  // namespace
}  // namespace tabby::nn
