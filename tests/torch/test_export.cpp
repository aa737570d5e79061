// tabby export: every layer kind and zoo architecture written as ONNX, then
// read back by ONNX's checker, OpenCV DNN (Debian 12's 4.6 at the default
// opset) and ONNX Runtime (scripts/install-test-tools.sh), each of which must
// give the probabilities of `tabby predict` within 1e-4 on the same pixels;
// and the export's mistakes, each with its message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <random>

#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/image/resize.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::run_tabby;

// Two classes of noisy colour fields at size x size, so a model has
// something to tell apart; the real photos (when ../shared is there) are
// resized here with tabby's own resize, so predict and the runtimes see the
// same pixels.
void write_export_images(const fs::path& root, int size, int per_class, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 90);
  for (int c = 0; c < 2; ++c) {
    for (int i = 0; i < per_class; ++i) {
      Image image(size, size);
      for (size_t p = 0; p < image.pixels.size(); ++p) {
        image.pixels[p] = static_cast<uint8_t>((static_cast<int>(p % 3) == c ? 150 : 30) + noise(rng));
      }
      testing::write_bytes(root / (c ? "dogs" : "cats") / ("img" + std::to_string(i) + ".png"), encode_png(image));
    }
  }
}

void add_real_photos(const fs::path& root, int size) {
  const auto shared = testing::shared_dir();
  if (!shared) return;
  for (const char* name : {"cats/cat.4001.jpg", "dogs/dog.4001.jpg"}) {
    const fs::path photo = *shared / "datasets" / "cats_dogs_fullres" / "test_set" / name;
    if (!fs::exists(photo)) continue;
    Image image(size, size);
    load_image_resized(photo, size, size, false, image.pixels.data());
    testing::write_bytes(root / fs::path(name).parent_path() / ("photo-" + fs::path(name).stem().string() + ".png"),
                         encode_png(image));
  }
}

CommandResult run_python(const std::vector<std::string>& args) {
  std::string line = "PYTHONPATH=" + testing::shell_quote(std::getenv("TABBY_PYTOOLS")) + " " +
                     testing::shell_quote(std::getenv("TABBY_PYTHON"));
  for (const auto& a : args) line += " " + testing::shell_quote(a);
  return testing::run_command(line);
}

std::string checker_script() {
  return (fs::path(std::getenv("TABBY_SOURCE_DIR")) / "tests" / "export" / "check_onnx.py").string();
}

// BatchNormalization of flat features (after global pooling): ONNX's
// BatchNormalization takes (N, C) as well as (N, C, H, W).
constexpr const char* kFlatBatchNormModel = R"(name = "flat-bn"
[[layers]]
type = "Rescaling"
scale = 0.00784313725490196
offset = -1
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "BatchNormalization"
momentum = 0
[[layers]]
type = "Dense"
)";

struct ExportCase {
  std::string name;
  std::vector<std::string> model_flags;  // --model and what it needs
  int size = 48;
  int opset = 10;
  std::string runtimes = "checker,opencv,onnxruntime";
  std::string model_toml = {};  // a model file, written to the case's folder and given as --model
};

void PrintTo(const ExportCase& c, std::ostream* os) { *os << c.name; }

class ExportRuntimes : public ::testing::TestWithParam<ExportCase> {};

TEST_P(ExportRuntimes, GiveThePredictionsOfTabby) {
  const ExportCase& c = GetParam();
  const fs::path dir = testing::scratch_dir("export_" + c.name + "_" + std::to_string(::getpid()));
  write_export_images(dir / "train", c.size, 4, 1);
  write_export_images(dir / "test", c.size, 2, 2);
  add_real_photos(dir / "test", c.size);
  std::vector<std::string> train = {"train", "--data", (dir / "train").string(), "--image-size", std::to_string(c.size),
                                    "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--threads", "1",
                                    "--out", (dir / "run").string()};
  train.insert(train.end(), c.model_flags.begin(), c.model_flags.end());
  if (!c.model_toml.empty()) {
    testing::write_bytes(dir / "model.toml", c.model_toml);
    train.insert(train.end(), {"--model", (dir / "model.toml").string()});
  }
  const CommandResult trained = run_tabby(train);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;

  const fs::path model = dir / "model.onnx";
  const CommandResult exported =
      run_tabby({"export", (dir / "run").string(), "--opset", std::to_string(c.opset), "--out", model.string(), "--json"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto summary = nlohmann::json::parse(exported.out);
  EXPECT_EQ(summary["opset"], c.opset);
  EXPECT_EQ(summary["bytes"].get<int64_t>(), static_cast<int64_t>(fs::file_size(model)));

  const fs::path csv = dir / "predictions.csv";
  const CommandResult predicted =
      run_tabby({"predict", (dir / "run").string(), (dir / "test").string(), "--csv", csv.string(), "--threads", "1"});
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;

  const CommandResult checked = run_python({checker_script(), model.string(), csv.string(), "--runtimes", c.runtimes});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  for (const auto& runtime : {"opencv", "onnxruntime"}) {
    if (c.runtimes.find(runtime) != std::string::npos) {
      EXPECT_NE(checked.out.find(std::string(runtime) + ": "), std::string::npos) << checked.out;
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

const std::vector<std::string> kNoWeights = {"--weights", "none"};

std::vector<std::string> zoo(const std::string& model, std::vector<std::string> more = {}) {
  std::vector<std::string> flags = {"--model", model, "--weights", "none"};
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// Every other layer kind and activation tabby declares, in model files of
// their own. Sizes are chosen so "same" padding is uneven (the odd pixel goes
// to the bottom/right) in a strided convolution, an average and a max pool;
// batch norm keeps the last batch's statistics (momentum 0), so its mean and
// variance are far from 0 and 1 and a mistake in it shows, and the model's
// probabilities differ between images by far more than the tolerance.
//
// At 24 px: a stride-2 "same" convolution with sigmoid (24 -> 12, padded
// 0/1), batch norm of images, an Activation layer (gelu), two residual
// blocks (an identity shortcut, then a projection to 12 channels), a "valid"
// convolution with tanh (-> 10), two "same" average pools (-> 5, -> 3 padded
// 0/1), a "same" convolution with swish, batch norm again, a "same" max pool
// (-> 2, padded 0/1), GlobalAveragePooling2D and a gelu Dense. The zoom,
// translation and contrast augmentations are identities at inference: a
// contrast change or a one-pixel shift left in the graph would move the
// probabilities by 1e-3 or more.
constexpr const char* kEveryLayerModel = R"(name = "every-layer"
[[layers]]
type = "Rescaling"
scale = 0.00784313725490196
offset = -1.0
[[layers]]
type = "RandomZoom"
height_factor = 0.2
[[layers]]
type = "RandomTranslation"
height_factor = 0.1
width_factor = 0.1
[[layers]]
type = "RandomContrast"
factor = 0.3
[[layers]]
type = "RandomResizedCrop"
scale = 0.5
[[layers]]
type = "RandomColorJitter"
brightness_factor = 0.3
hue_factor = 0.1
[[layers]]
type = "TrivialAugmentWide"
[[layers]]
type = "RandAugment"
[[layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
strides = 2
padding = "same"
activation = "sigmoid"
[[layers]]
type = "BatchNormalization"
momentum = 0.0
[[layers]]
type = "Activation"
activation = "gelu"
[[layers]]
type = "ResidualBlock"
filters = 8
momentum = 0.0
zero_init_residual = false
[[layers]]
type = "ResidualBlock"
filters = 12
momentum = 0.0
zero_init_residual = false
[[layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
padding = "valid"
activation = "tanh"
[[layers]]
type = "AveragePooling2D"
pool_size = 2
padding = "same"
[[layers]]
type = "AveragePooling2D"
pool_size = 2
padding = "same"
[[layers]]
type = "Conv2D"
filters = 8
kernel_size = 3
padding = "same"
activation = "swish"
[[layers]]
type = "BatchNormalization"
momentum = 0.0
[[layers]]
type = "MaxPooling2D"
pool_size = 2
padding = "same"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
units = 8
activation = "gelu"
[[layers]]
type = "Dense"
activation = "softmax"
)";

// One sigmoid unit (binary): probabilities (1 - p, p). Also [[augment]],
// a convolution without bias, batch norm with its own momentum and epsilon,
// swish as an Activation layer, a non-square "same" kernel with uneven
// strides (20 -> 10 padded 0/1 in height), a "valid" non-square average pool,
// GlobalMaxPooling2D and a hidden sigmoid Dense.
constexpr const char* kBinaryModel = R"(name = "binary"
[[augment]]
type = "RandomFlip"
mode = "horizontal"
[[augment]]
type = "RandomZoom"
height_factor = [-0.2, 0.1]
width_factor = 0.1
[[layers]]
type = "Rescaling"
scale = 0.00784313725490196
offset = -1.0
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 5
use_bias = false
[[layers]]
type = "BatchNormalization"
momentum = 0.5
epsilon = 0.01
[[layers]]
type = "Activation"
activation = "swish"
[[layers]]
type = "Conv2D"
filters = 8
kernel_size = [3, 1]
strides = [2, 1]
padding = "same"
activation = "tanh"
[[layers]]
type = "AveragePooling2D"
pool_size = [2, 3]
strides = 1
[[layers]]
type = "GlobalMaxPooling2D"
[[layers]]
type = "Dropout"
rate = 0.3
[[layers]]
type = "Dense"
units = 4
activation = "sigmoid"
[[layers]]
type = "Dense"
units = 1
activation = "sigmoid"
)";

// A softmax over an image's channels (an Activation layer on image-shaped
// values: Softmax with axis 1, opset 13 on) and an Activation layer as the
// output, with independent sigmoids for the two classes.
constexpr const char* kImageSoftmaxModel = R"(name = "image-softmax"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
padding = "same"
[[layers]]
type = "Activation"
activation = "softmax"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
[[layers]]
type = "Activation"
activation = "sigmoid"
)";

INSTANTIATE_TEST_SUITE_P(
    Models, ExportRuntimes,
    ::testing::Values(
        // The tutorials' own CNNs: Rescaling, valid and same convolutions,
        // pools, Flatten, Dense, Dropout and the Random* layers as identities.
        ExportCase{"tutorial_cnn", {"--model", "tutorial-cnn"}},
        ExportCase{"tutorial_cnn_augmented", {"--model", "tutorial-cnn-augmented"}},
        ExportCase{"animals_cnn", {"--model", "animals-cnn"}},
        // The transfer-learning tutorials: Normalization or Rescaling in front
        // of a frozen backbone, GAP/Dropout/Dense head.
        ExportCase{"tutorial_mobilenet_v2", zoo("tutorial-mobilenet_v2"), 64},
        ExportCase{"tutorial_mobilenet_v3_large", zoo("tutorial-mobilenet_v3_large"), 64},
        // Every zoo architecture, with tabby's head and with its own.
        ExportCase{"mobilenet_v3_small", zoo("mobilenet_v3_small"), 64},
        ExportCase{"resnet18_include_top", zoo("resnet18", {"--include-top"}), 64},
        ExportCase{"resnet50", zoo("resnet50"), 64},
        ExportCase{"vgg16", zoo("vgg16"), 32},
        ExportCase{"squeezenet1_1", zoo("squeezenet1_1"), 64},
        ExportCase{"squeezenet1_1_include_top", zoo("squeezenet1_1", {"--include-top"}), 64},
        // SiLU as x * Sigmoid(x), squeeze-excitation with a sigmoid gate.
        ExportCase{"efficientnet_b0", zoo("efficientnet_b0"), 64},
        // LayerNorm over channels in ReduceMean arithmetic, exact GELU via Erf.
        ExportCase{"convnext_tiny_include_top", zoo("convnext_tiny", {"--include-top"}), 64, 13,
                   "checker,onnxruntime"},
        ExportCase{"regnet_y_400mf_include_top", zoo("regnet_y_400mf", {"--include-top"}), 64},
        // Attention as MatMul / Softmax, the class token expanded to the
        // batch, LayerNormalization (opset 17). Frozen, so that only the head
        // trains: ViT-B's backward pass would make this the slowest case.
        ExportCase{"vit_b_16_opset17", zoo("vit_b_16", {"--freeze-backbone"}), 224, 17, "checker,onnxruntime"},
        // Later opsets: Clip's bounds as inputs (11), Resize's optional roi
        // (13), HardSwish as one op (14). OpenCV 4.6 reads neither a Clip
        // with bound inputs nor HardSwish, so ONNX Runtime alone checks them.
        ExportCase{"mobilenet_v3_small_opset11", zoo("mobilenet_v3_small"), 64, 11},
        ExportCase{"mobilenet_v2_opset13", zoo("mobilenet_v2"), 64, 13, "checker,onnxruntime"},
        ExportCase{"mobilenet_v3_large_opset17", zoo("mobilenet_v3_large"), 64, 17, "checker,onnxruntime"},
        // Model files with every other layer kind and activation (above).
        ExportCase{"every_layer", {}, 24, 10, "checker,opencv,onnxruntime", kEveryLayerModel},
        ExportCase{"binary_sigmoid", {}, 24, 10, "checker,opencv,onnxruntime", kBinaryModel},
        ExportCase{"every_layer_opset17", {}, 24, 17, "checker,onnxruntime", kEveryLayerModel},
        ExportCase{"binary_sigmoid_opset13", {}, 24, 13, "checker,onnxruntime", kBinaryModel},
        ExportCase{"image_softmax_opset13", {}, 16, 13, "checker,onnxruntime", kImageSoftmaxModel},
        ExportCase{"flat_batch_norm", {}, 16, 10, "checker,opencv,onnxruntime", kFlatBatchNormModel}),
    [](const ::testing::TestParamInfo<ExportCase>& info) { return info.param.name; });

// One small finished run for the mistakes.
class ExportMistakes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(testing::scratch_dir("export_mistakes_" + std::to_string(::getpid())));
    write_export_images(*dir_ / "train", 32, 4, 3);
    const CommandResult r = run_tabby({"train", "--data", (*dir_ / "train").string(), "--model", "tutorial-cnn",
                                       "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                                       "--threads", "1", "--out", run().string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static fs::path run() { return *dir_ / "run"; }
  static fs::path* dir_;
};
fs::path* ExportMistakes::dir_ = nullptr;

TEST_F(ExportMistakes, TheDefaultFileIsInTheRunFolder) {
  const CommandResult r = run_tabby({"export", run().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (run() / "model.onnx").string() + "\n");
  EXPECT_GT(fs::file_size(run() / "model.onnx"), 1000u);
}

TEST_F(ExportMistakes, AnOpsetOutsideTheRangeIsRefused) {
  for (const char* opset : {"9", "18"}) {
    const CommandResult r = run_tabby({"export", run().string(), "--opset", opset});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("--opset " + std::string(opset) + " is not one tabby writes"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("10 to 17"), std::string::npos) << r.err;
  }
}

TEST_F(ExportMistakes, AnUnknownFormatIsRefused) {
  const CommandResult r = run_tabby({"export", run().string(), "--format", "tflite"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--format tflite"), std::string::npos) << r.err;
}

TEST_F(ExportMistakes, AMissingRunFolderIsNamed) {
  const CommandResult r = run_tabby({"export", (*dir_ / "no-such-run").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no-such-run"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(*dir_ / "no-such-run" / "model.onnx"));
}

// A copy of the finished run's files with DAMAGE done to them.
static fs::path damaged_copy(const fs::path& run, const fs::path& dest,
                             const std::function<void(const fs::path&)>& damage) {
  fs::create_directories(dest);
  for (const auto& entry : fs::directory_iterator(run)) {
    if (entry.is_regular_file()) fs::copy(entry.path(), dest / entry.path().filename());
  }
  damage(dest);
  return dest;
}

TEST_F(ExportMistakes, AnUnfinishedRunIsRefusedWithTheResumeCommand) {
  const fs::path unfinished = damaged_copy(run(), *dir_ / "unfinished", [](const fs::path& d) {
    auto record = nlohmann::json::parse(read_file(d / "run.json"));
    record["status"] = "running";
    testing::write_bytes(d / "run.json", record.dump(1));
  });
  const CommandResult r = run_tabby({"export", unfinished.string(), "--out", (*dir_ / "unfinished.onnx").string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("has not finished (running)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tabby train --resume"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(*dir_ / "unfinished.onnx"));
}

TEST_F(ExportMistakes, TruncatedWeightsAreNamedAndNothingIsWritten) {
  const fs::path damaged = damaged_copy(run(), *dir_ / "truncated-weights", [](const fs::path& d) {
    fs::resize_file(d / "weights.safetensors", fs::file_size(d / "weights.safetensors") / 2);
  });
  const fs::path out = *dir_ / "truncated-weights.onnx";
  const CommandResult r = run_tabby({"export", damaged.string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("weights.safetensors"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: the run's weights are damaged: restore weights.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << "one error and one hint:\n" << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(ExportMistakes, MissingWeightsOfAFinishedRunAreNamed) {
  const fs::path damaged = damaged_copy(run(), *dir_ / "missing-weights",
                                        [](const fs::path& d) { fs::remove(d / "weights.safetensors"); });
  const fs::path out = *dir_ / "missing-weights.onnx";
  const CommandResult r = run_tabby({"export", damaged.string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("has finished but its weights.safetensors is missing"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("restore the file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(ExportMistakes, AnUnreadableRunRecordIsNamed) {
  const fs::path damaged = damaged_copy(run(), *dir_ / "cut-record", [](const fs::path& d) {
    const std::string record = read_file(d / "run.json");
    testing::write_bytes(d / "run.json", record.substr(0, record.size() / 2));
  });
  const fs::path out = *dir_ / "cut-record.onnx";
  const CommandResult r = run_tabby({"export", damaged.string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("run.json"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(ExportMistakes, AnUnwritableDestinationIsNamed) {
  testing::write_bytes(*dir_ / "a-file", "x");
  const CommandResult r = run_tabby({"export", run().string(), "--out", (*dir_ / "a-file" / "model.onnx").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("a-file"), std::string::npos) << r.err;
}

// VGG's own classifier pools to 7x7: from a 32 px input's 1x1 features that
// is no fixed ONNX window, and the message says which size would work.
TEST(ExportLimits, AnAdaptivePoolWithNoExactWindowIsExplained) {
  const fs::path dir = testing::scratch_dir("export_vgg_top_" + std::to_string(::getpid()));
  write_export_images(dir / "train", 32, 2, 4);
  const CommandResult trained =
      run_tabby({"train", "--data", (dir / "train").string(), "--model", "vgg16", "--weights", "none", "--include-top",
                 "--image-size", "32", "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--threads", "1",
                 "--out", (dir / "run").string()});
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const CommandResult r = run_tabby({"export", (dir / "run").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("has no exact ONNX form"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("224"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "run" / "model.onnx"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// A tiny finished run of a model file, for the layers the export refuses.
CommandResult train_model_file(const fs::path& dir, const std::string& toml) {
  write_export_images(dir / "train", 16, 2, 5);
  testing::write_bytes(dir / "model.toml", toml);
  return run_tabby({"train", "--data", (dir / "train").string(), "--model", (dir / "model.toml").string(),
                    "--image-size", "16", "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--threads", "1",
                    "--out", (dir / "run").string()});
}

// Before opset 13 ONNX's Softmax flattens everything after its axis, so a
// softmax over an image's channels needs 13; there it is exported (the
// image_softmax_opset13 case above).
TEST(ExportLimits, ASoftmaxOverImagesNeedsOpset13) {
  const fs::path dir = testing::scratch_dir("export_image_softmax_" + std::to_string(::getpid()));
  const CommandResult trained = train_model_file(dir, kImageSoftmaxModel);
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  for (const char* opset : {"10", "12"}) {
    const fs::path out = dir / ("opset" + std::string(opset) + ".onnx");
    const CommandResult r = run_tabby({"export", (dir / "run").string(), "--opset", opset, "--out", out.string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("a softmax over image-shaped values needs --opset 13 or later"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace tabby
