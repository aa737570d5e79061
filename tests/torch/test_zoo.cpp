// The model zoo: structure and names equal to torchvision's (checked against
// fixtures made by python3-torchvision at test time), outputs equal to
// torchvision's on the same weights, the reverse direction, the golden ImageNet
// test vectors, and freezing / fine-tuning rules.
#include "tabby/nn/state_dict.h"
#include "tabby/config/model_spec.h"
#include "tabby/nn/network.h"
#include "tabby/config/backbone_table.h"
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/backbone.h"
#include "tabby/nn/zoo/layers.h"
#include "tabby/util/error.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/safetensors.h"
#include "tabby/weights/weights_file.h"
#include "support/module_state.h"
#include "support/test_support.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

using namespace tabby;
using namespace tabby::nn;
namespace fs = std::filesystem;

namespace {

using tabby::testing::module_state_raw;

const std::vector<std::string> kArchs = {
    "mobilenet_v2",    "mobilenet_v3_large", "mobilenet_v3_small", "resnet18",        "resnet50",
    "vgg16",           "squeezenet1_1",      "efficientnet_b0",    "efficientnet_b1", "efficientnet_b2",
    "efficientnet_b3", "efficientnet_v2_s",  "convnext_tiny",      "regnet_y_400mf",  "vit_b_16"};

// Covered by its feature part only (torchvision's full VGG16 is 528 MB).
bool features_only(const std::string& arch) { return arch == "vgg16"; }

// The fixtures' input (tests/python/make_zoo_fixtures.py): non-square, except
// for ViT, whose position embedding fixes 224x224 (one image keeps it cheap).
std::vector<int64_t> fixture_input_shape(const std::string& arch) {
  if (arch == "vit_b_16") return {1, 3, 224, 224};
  return {2, 3, 64, 80};
}

// The smallest square input each arch takes, for the structural tests.
int64_t small_side(const std::string& arch) { return arch == "vit_b_16" ? 224 : 64; }

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

fs::path fixture_script() {
  return fs::path(env_or("TABBY_SOURCE_DIR", TABBY_SOURCE_DIR)) / "tests/python/make_zoo_fixtures.py";
}

std::string python() { return env_or("TABBY_PYTHON", "/usr/bin/python3"); }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Fixtures are made once and shared by every test process of a run (ctest
// starts one process per test): the folder name carries a hash of the script,
// a lock file lets one process make it while concurrent ones wait, and the
// finished folder appears atomically by rename.
struct Fixtures {
  fs::path dir;
  std::string skip_reason;  // non-empty: torchvision unavailable
};

Fixtures make_fixtures() {
  Fixtures f;
  const fs::path script = fixture_script();
  const size_t hash = std::hash<std::string>{}(read_text(script));
  const char* tmp = std::getenv("TABBY_TEST_TMP");
  const fs::path base = tmp ? fs::path(tmp) : fs::temp_directory_path() / "tabby-tests";
  fs::create_directories(base);
  f.dir = base / ("zoo_fixtures_" + std::to_string(hash));
  const int lock = ::open((base / "zoo_fixtures.lock").c_str(), O_CREAT | O_RDWR, 0644);
  if (lock >= 0) ::flock(lock, LOCK_EX);  // released when the process ends, or below
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) ::close(fd);
    }
  } unlock{lock};
  if (fs::exists(f.dir / "done")) return f;
  for (const auto& entry : fs::directory_iterator(base))  // fixtures of an older script version
    if (entry.path().filename().string().rfind("zoo_fixtures_", 0) == 0 && entry.is_directory())
      fs::remove_all(entry.path());
  const fs::path work = base / ("zoo_fixtures_tmp_" + std::to_string(::getpid()));
  fs::remove_all(work);
  fs::create_directories(work);
  auto result = tabby::testing::run_command(tabby::testing::shell_quote(python()) + " " +
                                            tabby::testing::shell_quote(script.string()) + " make " +
                                            tabby::testing::shell_quote(work.string()));
  if (result.exit_code == 3) {
    f.skip_reason = "torchvision not importable by " + python() + ": " + result.err;
  } else if (result.exit_code != 0) {
    ADD_FAILURE() << "fixture script failed (" << result.exit_code << "): " << result.err;
    f.skip_reason = "fixture script failed";
  } else {
    std::ofstream(work / "done") << "ok";
    fs::remove_all(f.dir);
    fs::rename(work, f.dir);
  }
  fs::remove_all(work);
  return f;
}

const Fixtures& fixtures() {
  static const Fixtures made = make_fixtures();
  return made;
}

#define REQUIRE_FIXTURES(var)                                        \
  const Fixtures& var = fixtures();                                  \
  if (!var.skip_reason.empty()) GTEST_SKIP() << var.skip_reason

TensorMap read_tensors(const fs::path& path) { return to_torch(read_safetensors(path).tensors); }

// The module's state converted for writing with tabby/weights (write_safetensors).
// A weights file (safetensors or torch.save zip .pth) loaded into a backbone.
LoadReport load_backbone_file(BackboneImpl& backbone, const fs::path& path, bool strict) {
  return load_backbone_state(backbone, to_torch(read_weights_file(path)), strict);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  return (a - b).abs().max().item<double>();
}

// Random batch-norm statistics, conv biases and order-one linear layers, as the
// fixture script does for torchvision, so the reverse check exercises them.
void randomize_like_fixtures(const std::string& arch, torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  for (const auto& item : model.named_modules()) {
    const std::string& name = item.key();
    if (auto* bn = item.value()->as<torch::nn::BatchNorm2d>()) {
      const int64_t n = bn->options.num_features();
      bn->running_mean.copy_(torch::randn({n}) * 0.2);
      bn->running_var.copy_(torch::rand({n}) + 0.5);
      bn->weight.copy_(torch::rand({n}) + 0.5);
      bn->bias.copy_(torch::randn({n}) * 0.2);
      bn->num_batches_tracked.fill_(17);
      const std::string residual_end = arch == "resnet18" ? ".bn2" : ".bn3";
      if (name.rfind("layer", 0) == 0 && name.size() > 4 &&
          name.compare(name.size() - 4, 4, residual_end) == 0)
        bn->weight.mul_(0.2);
    } else if (auto* conv = item.value()->as<torch::nn::Conv2d>()) {
      if (conv->bias.defined()) conv->bias.copy_(torch::randn_like(conv->bias) * 0.05);
    } else if (auto* linear = item.value()->as<torch::nn::Linear>()) {
      linear->weight.copy_(torch::randn_like(linear->weight) / std::sqrt(double(linear->weight.size(1))));
      linear->bias.copy_(torch::randn_like(linear->bias) * 0.1);
    }
  }
  // LayerNorms (ConvNeXt's over channels too), ConvNeXt's layer scales (1e-6
  // would hide its residual branches) and ViT's class token (zero at first).
  for (auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    torch::Tensor value = p.value();
    if (name.size() >= 11 && name.compare(name.size() - 11, 11, "layer_scale") == 0) {
      value.copy_(torch::rand_like(value) * 0.2 + 0.05);
    } else if (name == "class_token") {
      value.copy_(torch::randn_like(value));
    }
  }
  for (const auto& item : model.named_modules()) {
    torch::Tensor weight, bias;
    if (auto* ln = item.value()->as<torch::nn::LayerNorm>()) {
      weight = ln->weight, bias = ln->bias;
    } else if (auto* cln = item.value()->as<zoo::ChannelLayerNorm>()) {
      weight = cln->weight, bias = cln->bias;
    } else {
      continue;
    }
    weight.copy_(torch::rand_like(weight) + 0.5);
    bias.copy_(torch::randn_like(bias) * 0.2);
  }
}

std::set<std::string> keys_of(const TensorMap& map) {
  std::set<std::string> keys;
  for (const auto& entry : map) keys.insert(entry.first);
  return keys;
}

std::vector<int64_t> top5(const torch::Tensor& logits) {
  torch::Tensor idx = std::get<1>(logits.reshape({-1}).topk(5));
  return std::vector<int64_t>(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + 5);
}

bool under(const std::string& name, const std::string& prefix) {
  return name.rfind(prefix, 0) == 0 && (name.size() == prefix.size() || name[prefix.size()] == '.');
}

std::vector<torch::nn::BatchNorm2dImpl*> batch_norms(torch::nn::Module& module) {
  std::vector<torch::nn::BatchNorm2dImpl*> out;
  for (const auto& m : module.modules())
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) out.push_back(bn);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Registry and structure
// ---------------------------------------------------------------------------

TEST(Zoo, ListsTheTorchvisionNames) { EXPECT_EQ(backbone_archs(), kArchs); }

// The registry's entries (names, weights sources, preprocessing) and the zoo's
// structures are one list: every entry has exactly one structure, every
// structure an entry.
TEST(Zoo, EveryRegistryEntryHasExactlyOneStructure) {
  EXPECT_EQ(backbone_archs(), backbone_arch_names());
  std::map<std::string, int> structures;
  for (const auto& structure : zoo::all_structures()) ++structures[structure.name];
  for (const auto& [name, count] : structures) {
    EXPECT_EQ(count, 1) << name;
    EXPECT_NE(find_backbone(name), nullptr) << name << " has a structure but no registry entry";
  }
  for (const auto& row : backbone_table()) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(structures[row.name], 1);
    EXPECT_EQ(make_backbone(row.name, false)->arch(), row.name);
    if (row.imagenet) {
      EXPECT_NE(row.imagenet->file_name.find(row.imagenet->sha256.substr(0, 8)), std::string::npos);
      // A full digest, or (where none is recorded) the prefix torch.hub checks.
      EXPECT_TRUE(row.imagenet->sha256.size() == 64u || row.imagenet->sha256.size() == 8u) << row.imagenet->sha256;
    }
    EXPECT_EQ(row.normalization.mean, imagenet_normalization().mean);
    EXPECT_EQ(row.default_image_size, row.eval.crop);
    EXPECT_LE(row.eval.crop, row.eval.resize);
  }
  // torchvision's presets for these weights.
  const BackboneInfo* b3 = find_backbone("efficientnet_b3");
  ASSERT_NE(b3, nullptr);
  EXPECT_EQ(b3->eval.resize, 320);
  EXPECT_EQ(b3->eval.crop, 300);
  EXPECT_EQ(b3->eval.interpolation, ResizeInterpolation::bicubic);
  EXPECT_EQ(find_backbone("convnext_tiny")->eval.resize, 236);
  EXPECT_EQ(find_backbone("efficientnet_v2_s")->default_image_size, 384);
  // No full digest known for these files: their names' prefixes (see backbone_table.cpp).
  for (const char* arch : {"efficientnet_b1", "efficientnet_b2", "regnet_y_400mf"})
    EXPECT_EQ(find_backbone(arch)->imagenet->sha256.size(), 8u) << arch;
}

TEST(Zoo, UnknownArchIsAUsageErrorListingTheKnownOnes) {
  try {
    make_backbone("resnet1000", true);
    FAIL() << "expected an error";
  } catch (const tabby::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("resnet1000"), std::string::npos);
    for (const auto& arch : kArchs) EXPECT_NE(e.hint().find(arch), std::string::npos) << e.hint();
  }
}

// Parameter counts published in torchvision's weight metadata.
TEST(Zoo, ParameterCountsMatchTorchvision) {
  const std::map<std::string, int64_t> with_top = {
      {"mobilenet_v2", 3504872}, {"mobilenet_v3_large", 5483032}, {"mobilenet_v3_small", 2542856},
      {"resnet18", 11689512},    {"resnet50", 25557032},          {"squeezenet1_1", 1235496},
      {"efficientnet_b0", 5288548}, {"efficientnet_b1", 7794184}, {"efficientnet_b2", 9109994},
      {"efficientnet_b3", 12233232}, {"efficientnet_v2_s", 21458488}, {"convnext_tiny", 28589128},
      {"regnet_y_400mf", 4344144}, {"vit_b_16", 86567656}};
  for (const auto& [arch, count] : with_top) {
    auto model = make_backbone(arch, true);
    EXPECT_EQ(model->count_parameters(false), count) << arch;
    EXPECT_EQ(model->count_parameters(true), count) << arch;  // fresh: all trainable
  }
  EXPECT_EQ(make_backbone("vgg16", false)->count_parameters(false), 14714688);
}

TEST(Zoo, FeatureMapsHaveTheAdvertisedChannels) {
  torch::NoGradGuard no_grad;
  const std::map<std::string, int64_t> channels = {
      {"mobilenet_v2", 1280},    {"mobilenet_v3_large", 960}, {"mobilenet_v3_small", 576}, {"resnet18", 512},
      {"resnet50", 2048},        {"vgg16", 512},              {"squeezenet1_1", 512},      {"efficientnet_b0", 1280},
      {"efficientnet_b1", 1280}, {"efficientnet_b2", 1408},   {"efficientnet_b3", 1536},   {"efficientnet_v2_s", 1280},
      {"convnext_tiny", 768},    {"regnet_y_400mf", 440},     {"vit_b_16", 768}};
  for (const auto& arch : kArchs) {
    auto model = make_backbone(arch, false);
    model->eval();
    EXPECT_EQ(model->feature_channels(), channels.at(arch)) << arch;
    torch::Tensor f = model->forward(torch::randn({1, 3, small_side(arch), small_side(arch)}));
    ASSERT_EQ(f.dim(), 4) << arch;
    EXPECT_EQ(f.size(1), channels.at(arch)) << arch;
    EXPECT_FALSE(model->include_top());
    EXPECT_THROW(model->forward_top(f), tabby::Error) << arch;
  }
}

TEST(Zoo, IncludeTopGivesLogitsForTheRequestedClasses) {
  torch::NoGradGuard no_grad;
  for (const auto& arch : {"mobilenet_v2", "mobilenet_v3_small", "resnet18", "squeezenet1_1", "efficientnet_b0",
                           "convnext_tiny", "regnet_y_400mf"}) {
    auto model = make_backbone(arch, true, 7);
    model->eval();
    torch::Tensor y = model->forward(torch::randn({2, 3, 64, 64}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7})) << arch;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << arch;
    EXPECT_EQ(model->num_classes(), 7);
  }
}

// Every parameter lies under exactly one unit, and every unit holds parameters.
TEST(Zoo, BlocksPartitionTheParameters) {
  const std::map<std::string, size_t> expected_units = {
      {"mobilenet_v2", 20},  {"mobilenet_v3_large", 19}, {"mobilenet_v3_small", 15}, {"resnet18", 11},
      {"resnet50", 19},      {"vgg16", 13},              {"squeezenet1_1", 10},
      {"efficientnet_b0", 19}, {"efficientnet_b1", 26},  {"efficientnet_b2", 26},      {"efficientnet_b3", 29},
      {"efficientnet_v2_s", 43}, {"convnext_tiny", 24},  {"regnet_y_400mf", 18},       {"vit_b_16", 17}};
  for (const auto& arch : kArchs) {
    auto model = make_backbone(arch, !features_only(arch));
    const auto units = model->blocks();
    EXPECT_EQ(units.size(), expected_units.at(arch)) << arch;
    std::map<std::string, int> hits;
    for (const auto& p : model->named_parameters()) {
      int owners = 0;
      for (const auto& unit : units) {
        if (under(p.key(), unit)) {
          ++owners;
          ++hits[unit];
        }
      }
      EXPECT_EQ(owners, 1) << arch << " " << p.key();
    }
    for (const auto& unit : units) EXPECT_GT(hits[unit], 0) << arch << " " << unit;
  }
}

// ---------------------------------------------------------------------------
// Parity with torchvision (fixtures made by tests/python/make_zoo_fixtures.py)
// ---------------------------------------------------------------------------

class ZooParity : public ::testing::TestWithParam<std::string> {};

// The full state dict's names and shapes, top included, are torchvision's.
TEST_P(ZooParity, NamesAndShapesEqualTorchvisions) {
  REQUIRE_FIXTURES(fx);
  const std::string arch = GetParam();
  const auto expected = nlohmann::json::parse(read_text(fx.dir / (arch + ".names.json")));
  auto model = make_backbone(arch, true);
  const TensorMap ours = module_state(*model);
  std::set<std::string> theirs;
  for (const auto& [name, shape] : expected.items()) {
    theirs.insert(name);
    auto it = ours.find(name);
    if (it == ours.end()) continue;
    EXPECT_EQ(it->second.sizes().vec(), shape.get<std::vector<int64_t>>()) << arch << " " << name;
  }
  EXPECT_EQ(keys_of(ours), theirs) << arch;
}

TEST_P(ZooParity, SameOutputsAsTorchvisionOnItsWeights) {
  REQUIRE_FIXTURES(fx);
  const std::string arch = GetParam();
  const TensorMap weights = read_tensors(fx.dir / (arch + ".weights.safetensors"));
  const TensorMap io = read_tensors(fx.dir / (arch + ".io.safetensors"));
  torch::NoGradGuard no_grad;

  auto model = make_backbone(arch, !features_only(arch));
  EXPECT_EQ(keys_of(module_state(*model)), keys_of(weights)) << arch;
  LoadReport report = load_module_state(*model, weights, /*strict=*/true);
  EXPECT_EQ(report.loaded, weights.size());
  model->eval();
  const torch::Tensor features = model->forward_features(io.at("input"));
  const double feature_diff = max_abs_diff(features, io.at("features"));
  EXPECT_LT(feature_diff, 1e-4) << arch;
  double output_diff = 0;
  if (!features_only(arch)) {
    output_diff = max_abs_diff(model->forward(io.at("input")), io.at("output"));
    EXPECT_LT(output_diff, 1e-4) << arch;

    // A feature extractor takes the same full state dict, dropping the top.
    auto extractor = make_backbone(arch, false);
    load_backbone_state(*extractor, weights, /*strict=*/true);
    extractor->eval();
    EXPECT_LT(max_abs_diff(extractor->forward(io.at("input")), io.at("features")), 1e-4) << arch;
  }
  std::cout << "[parity] " << arch << " max |diff| features " << feature_diff << ", logits " << output_diff
            << "\n";
}

INSTANTIATE_TEST_SUITE_P(Archs, ZooParity, ::testing::ValuesIn(kArchs),
                         [](const auto& info) { return info.param; });

// Weights written by tabby load into torchvision (strict) and give tabby's outputs.
TEST(ZooReverse, TabbyWeightsLoadIntoTorchvision) {
  // Without arguments the script only imports torchvision (3: cannot) and prints its usage.
  const auto probe = tabby::testing::run_command(tabby::testing::shell_quote(python()) + " " +
                                                 tabby::testing::shell_quote(fixture_script().string()));
  if (probe.exit_code == 3) GTEST_SKIP() << "torchvision not importable by " << python() << ": " << probe.err;
  const fs::path dir = tabby::testing::scratch_dir("zoo_reverse");
  torch::manual_seed(7);
  std::string archs;
  for (const auto& arch : kArchs) {
    auto model = make_backbone(arch, !features_only(arch));
    randomize_like_fixtures(arch, *model);
    model->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn(fixture_input_shape(arch));
    RawTensorMap io = {{"input", to_raw(x)}};
    io[features_only(arch) ? "features" : "output"] = to_raw(model->forward(x));
    write_safetensors(dir / (arch + ".weights.safetensors"), module_state_raw(*model));
    write_safetensors(dir / (arch + ".io.safetensors"), io);
    archs += " " + arch;
  }
  auto result = tabby::testing::run_command(tabby::testing::shell_quote(python()) + " " +
                                            tabby::testing::shell_quote(fixture_script().string()) + " check " +
                                            tabby::testing::shell_quote(dir.string()) + archs);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::istringstream lines(result.out);
  std::string arch;
  double diff = 0;
  size_t checked = 0;
  while (lines >> arch >> diff) {
    EXPECT_LT(diff, 1e-4) << arch;
    std::cout << "[reverse] " << arch << " max |diff| " << diff << "\n";
    ++checked;
  }
  EXPECT_EQ(checked, kArchs.size()) << result.out;
  if (!HasFailure()) fs::remove_all(dir);  // 850 MB of weights; kept only to debug a failure
}

// ---------------------------------------------------------------------------
// Golden ImageNet test vectors (../shared/weights)
// ---------------------------------------------------------------------------

void expect_golden(const std::string& arch, const fs::path& weights, const fs::path& vectors, double tolerance) {
  auto model = make_backbone(arch, true);
  LoadReport report = load_backbone_file(*model, weights, /*strict=*/true);
  EXPECT_TRUE(report.ok());
  model->eval();
  torch::NoGradGuard no_grad;
  const TensorMap tv = read_tensors(vectors);
  int cases = 0;
  double worst = 0;
  for (int i = 0; tv.count("input_" + std::to_string(i)); ++i, ++cases) {
    const torch::Tensor want = tv.at("output_" + std::to_string(i));
    const torch::Tensor got = model->forward(tv.at("input_" + std::to_string(i)));
    EXPECT_EQ(top5(got), top5(want)) << arch << " case " << i;
    const double diff = max_abs_diff(got, want);
    worst = std::max(worst, diff);
    EXPECT_LT(diff, tolerance) << arch << " case " << i;
  }
  EXPECT_GT(cases, 0) << vectors;
  std::cout << "[golden] " << arch << " (" << weights.filename().string() << ") " << cases
            << " cases, max |diff| " << worst << "\n";
}

TEST(ZooGolden, MobileNetV2ReproducesTheTestVectors) {
  TABBY_REQUIRE_SHARED(shared);
  expect_golden("mobilenet_v2", shared / "weights/mobilenet_v2_imagenet.safetensors",
                shared / "weights/mobilenet_v2_testvectors.safetensors", 0.1);
}

TEST(ZooGolden, SqueezeNetReproducesTheTestVectors) {
  TABBY_REQUIRE_SHARED(shared);
  expect_golden("squeezenet1_1", shared / "weights/squeezenet1_1_imagenet.safetensors",
                shared / "weights/squeezenet1_1_testvectors.safetensors", 1e-3);
}

TEST(ZooGolden, SqueezeNetFromThePthReproducesTheTestVectors) {
  TABBY_REQUIRE_SHARED(shared);
  // The same tensors as the safetensors copy, read through the .pth reader.
  const TensorMap pth = to_torch(read_pth(shared / "weights/squeezenet1_1_imagenet.pth"));
  const TensorMap st = read_tensors(shared / "weights/squeezenet1_1_imagenet.safetensors");
  ASSERT_EQ(keys_of(pth), keys_of(st));
  for (const auto& [name, tensor] : st) EXPECT_TRUE(torch::equal(pth.at(name), tensor)) << name;
  expect_golden("squeezenet1_1", shared / "weights/squeezenet1_1_imagenet.pth",
                shared / "weights/squeezenet1_1_testvectors.safetensors", 1e-3);
}

TEST(ZooGolden, PretrainedFeatureExtractorLoadsTheFullFile) {
  TABBY_REQUIRE_SHARED(shared);
  auto model = make_backbone("mobilenet_v2", false);
  LoadReport report = load_backbone_file(*model, shared / "weights/mobilenet_v2_imagenet.safetensors", true);
  EXPECT_TRUE(report.ok());
  EXPECT_GT(report.loaded, 0u);
}

TEST(ZooGolden, WrongArchitectureFileIsAnErrorListingTheMismatches) {
  TABBY_REQUIRE_SHARED(shared);
  auto model = make_backbone("resnet18", true);
  const fs::path file = shared / "weights/squeezenet1_1_imagenet.safetensors";
  try {
    load_backbone_file(*model, file, /*strict=*/true);
    FAIL() << "expected an error";
  } catch (const tabby::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("missing"), std::string::npos) << what;
    EXPECT_NE(what.find("layer1.0.conv1.weight"), std::string::npos) << what;
  }
  // Non-strict: a report, no exception.
  LoadReport report = load_backbone_file(*model, file, /*strict=*/false);
  EXPECT_FALSE(report.ok());
  EXPECT_FALSE(report.unexpected.empty());
}

// ---------------------------------------------------------------------------
// Freezing and fine-tuning
// ---------------------------------------------------------------------------

namespace {

// A backbone under a small head, as the model builder uses it.
struct BackboneWithHeadImpl : torch::nn::Module {
  explicit BackboneWithHeadImpl(Backbone b)
      : backbone(register_module("backbone", b)),
        head(register_module("head", torch::nn::Linear(b->feature_channels(), 3))) {}
  torch::Tensor forward(torch::Tensor x) {
    return head->forward(torch::adaptive_avg_pool2d(backbone->forward_features(x), {1, 1}).flatten(1));
  }
  Backbone backbone;
  torch::nn::Linear head;
};
TORCH_MODULE(BackboneWithHead);

// One SGD-free training step: forward in train mode, loss, backward.
void train_step(BackboneWithHead& net) {
  net->train();
  torch::Tensor x = torch::randn({4, 3, 32, 32}) * 2 + 0.5;
  torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), torch::tensor({0, 1, 2, 0}));
  loss.backward();
}

TensorMap snapshot_buffers(torch::nn::Module& m) {
  TensorMap out;
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value().clone();
  return out;
}

}  // namespace

TEST(ZooFreeze, FrozenBackboneGetsNoGradientsAndKeepsItsStatistics) {
  torch::manual_seed(1);
  BackboneWithHead net(make_backbone("mobilenet_v2", false));
  net->backbone->set_trainable_blocks(0);
  EXPECT_EQ(net->backbone->count_parameters(true), 0);
  const TensorMap before = snapshot_buffers(*net->backbone);
  train_step(net);
  EXPECT_TRUE(net->backbone->is_training());
  for (auto* bn : batch_norms(*net->backbone)) EXPECT_FALSE(bn->is_training());
  for (const auto& p : net->backbone->named_parameters()) {
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
  }
  EXPECT_TRUE(net->head->weight.grad().defined());
  for (const auto& [name, value] : snapshot_buffers(*net->backbone))
    EXPECT_TRUE(torch::equal(value, before.at(name))) << name << " moved";
}

TEST(ZooFreeze, LastTwoBlocksTrainWithBatchNormInInferenceMode) {
  torch::manual_seed(2);
  BackboneWithHead net(make_backbone("resnet18", false));
  auto& backbone = net->backbone;
  backbone->set_trainable_blocks(2);
  const auto units = backbone->blocks();
  const std::vector<std::string> last_two(units.end() - 2, units.end());
  EXPECT_EQ(last_two, (std::vector<std::string>{"layer4.0", "layer4.1"}));
  int64_t expected_trainable = 0;
  for (const auto& p : backbone->named_parameters()) {
    const bool in_last_two = under(p.key(), last_two[0]) || under(p.key(), last_two[1]);
    EXPECT_EQ(p.value().requires_grad(), in_last_two) << p.key();
    if (in_last_two) expected_trainable += p.value().numel();
  }
  EXPECT_GT(expected_trainable, 0);
  EXPECT_EQ(backbone->count_parameters(true), expected_trainable);

  const TensorMap before = snapshot_buffers(*backbone);
  train_step(net);
  for (auto* bn : batch_norms(*backbone)) EXPECT_FALSE(bn->is_training());
  for (const auto& [name, value] : snapshot_buffers(*backbone))
    EXPECT_TRUE(torch::equal(value, before.at(name))) << name << " moved";
  for (const auto& p : backbone->named_parameters())
    EXPECT_EQ(p.value().grad().defined(), p.value().requires_grad()) << p.key();
}

TEST(ZooFreeze, WithoutBnInferenceOnlyTrainableBlocksUpdateStatistics) {
  torch::manual_seed(3);
  BackboneWithHead net(make_backbone("resnet18", false));
  net->backbone->set_trainable_blocks(1, /*bn_inference=*/false);
  const TensorMap before = snapshot_buffers(*net->backbone);
  train_step(net);
  for (const auto& [name, value] : snapshot_buffers(*net->backbone)) {
    const bool trainable = under(name, "layer4.1");
    EXPECT_EQ(torch::equal(value, before.at(name)), !trainable) << name;
  }
}

TEST(ZooFreeze, UnfreezingEverythingAndTheTopDropout) {
  auto model = make_backbone("mobilenet_v2", true);
  model->set_trainable_blocks(-1);
  EXPECT_EQ(model->count_parameters(true), model->count_parameters(false));
  EXPECT_EQ(model->trainable_blocks(), -1);
  model->train();
  for (auto* bn : batch_norms(*model)) EXPECT_FALSE(bn->is_training());  // bn_inference defaults on

  // All frozen: the classifier's dropout is off even in train mode, so two
  // forward passes agree.
  model->set_trainable_blocks(0);
  model->train();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 3, 32, 32});
  EXPECT_TRUE(torch::equal(model->forward(x), model->forward(x)));
  // Last unit (the classifier) trainable: dropout active again.
  model->set_trainable_blocks(1);
  EXPECT_FALSE(torch::equal(model->forward(x), model->forward(x)));
  // eval() then train() restores the same rules.
  model->eval();
  model->train();
  for (auto* bn : batch_norms(*model)) EXPECT_FALSE(bn->is_training());
  EXPECT_EQ(model->count_parameters(true), 1280 * 1000 + 1000);
}

TEST(ZooFreeze, FreshBackboneTrainsBatchNormNormally) {
  auto model = make_backbone("squeezenet1_1", false);
  model->train();
  EXPECT_EQ(model->trainable_blocks(), -1);
  EXPECT_FALSE(model->bn_inference());
  auto mnv2 = make_backbone("mobilenet_v3_small", false);
  mnv2->train();
  for (auto* bn : batch_norms(*mnv2)) {
    EXPECT_TRUE(bn->is_training());
    EXPECT_DOUBLE_EQ(bn->options.eps(), 0.001);
    EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.01);
  }
}

// Without autograd the zoo writes activations and residual sums into the
// convolutions' fresh outputs and calls oneDNN's convolution directly; with
// autograd on it runs the out-of-place ops of training. Both give the same
// numbers, and neither touches the caller's input.
TEST(ZooInference, InPlacePathGivesTheAutogradPathsValuesAndLeavesTheInput) {
  for (const std::string arch : {"mobilenet_v2", "resnet18", "efficientnet_b0", "regnet_y_400mf"}) {
    torch::manual_seed(3);
    auto model = make_backbone(arch, /*include_top=*/true, 4);
    model->eval();
    {
      torch::NoGradGuard no_grad;
      for (auto* bn : batch_norms(*model)) {  // statistics that are not the identity
        bn->running_mean.uniform_(-0.5, 0.5);
        bn->running_var.uniform_(0.5, 2.0);
      }
    }
    for (int64_t batch : {1, 5}) {
      const torch::Tensor x = torch::randn({batch, 3, 48, 48}).contiguous(torch::MemoryFormat::ChannelsLast);
      const torch::Tensor original = x.clone();
      const torch::Tensor with_autograd = model->forward(x).detach();
      torch::Tensor inference;
      {
        torch::NoGradGuard no_grad;
        inference = model->forward(x);
      }
      EXPECT_TRUE(torch::equal(x, original)) << arch;
      EXPECT_LT((inference - with_autograd).abs().max().item<double>(), 1e-4) << arch << " batch " << batch;
    }
  }
}

// ---------------------------------------------------------------------------
// Stochastic depth, ViT's input size and older torchvision state dicts
// ---------------------------------------------------------------------------

namespace {

std::vector<double> drop_probabilities(torch::nn::Module& model) {
  std::vector<double> out;
  for (const auto& m : model.modules())
    if (auto* drop = m->as<zoo::StochasticDepth>()) out.push_back(drop->p());
  return out;
}

}  // namespace

// Row mode: each sample's branch is kept whole (scaled by 1/(1-p)) or zeroed;
// the identity in inference.
TEST(ZooStochasticDepth, DropsWholeSamplesInTrainingOnly) {
  torch::manual_seed(5);
  zoo::StochasticDepth drop(0.5);
  const torch::Tensor x = torch::ones({400, 3, 2, 2});
  drop->train();
  const torch::Tensor y = drop->forward(x);
  const torch::Tensor per_sample = y.flatten(1);
  const torch::Tensor kept = per_sample.select(1, 0) != 0;
  // Every value of a sample is the same: 0 or 1 / (1 - 0.5).
  EXPECT_TRUE(torch::equal(per_sample.amin(1), per_sample.amax(1)));
  EXPECT_TRUE(torch::allclose(per_sample.select(1, 0).masked_select(kept), torch::full({kept.sum().item<int64_t>()}, 2.0f)));
  const double kept_share = kept.to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(kept_share, 0.35);
  EXPECT_LT(kept_share, 0.65);
  drop->eval();
  EXPECT_TRUE(torch::equal(drop->forward(x), x));
}

// torchvision's defaults grow linearly with the block's index: 0.2 x i / 16
// for EfficientNet-B0's 16 blocks, 0.1 x i / 17 for ConvNeXt-Tiny's 18; the
// option overrides them, and a model whose blocks drop gives different
// training outputs for the same input, the same ones in eval.
TEST(ZooStochasticDepth, RegistryDefaultsAndTheOption) {
  auto b0 = make_backbone("efficientnet_b0", false);
  const auto b0_drops = drop_probabilities(*b0);
  ASSERT_EQ(b0_drops.size(), 16u);
  for (size_t i = 0; i < b0_drops.size(); ++i) EXPECT_NEAR(b0_drops[i], 0.2 * i / 16.0, 1e-12) << i;
  const auto convnext_drops = drop_probabilities(*make_backbone("convnext_tiny", false));
  ASSERT_EQ(convnext_drops.size(), 18u);
  EXPECT_DOUBLE_EQ(convnext_drops.front(), 0.0);
  EXPECT_NEAR(convnext_drops.back(), 0.1, 1e-12);

  BackboneOptions options;
  options.stochastic_depth = 0.9;
  auto heavy = make_backbone("efficientnet_b0", options);
  EXPECT_NEAR(drop_probabilities(*heavy).back(), 0.9 * 15 / 16.0, 1e-12);
  options.stochastic_depth = 1.0;
  EXPECT_THROW(make_backbone("efficientnet_b0", options), tabby::UsageError);

  torch::manual_seed(6);
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({4, 3, 32, 32});
  heavy->set_trainable_blocks(-1, /*bn_inference=*/true);  // batch norm fixed: only the drops vary
  heavy->train();
  EXPECT_FALSE(torch::equal(heavy->forward(x), heavy->forward(x)));
  heavy->eval();
  EXPECT_TRUE(torch::equal(heavy->forward(x), heavy->forward(x)));
  // Frozen blocks do not drop either.
  heavy->set_trainable_blocks(0);
  heavy->train();
  EXPECT_TRUE(torch::equal(heavy->forward(x), heavy->forward(x)));
}

// A model file's `stochastic_depth` reaches the structure.
TEST(ZooStochasticDepth, AModelFileSetsIt) {
  const ModelSpec spec = parse_model_toml(
      "backbone = \"efficientnet_b0\"\nweights = \"none\"\npooling = \"avg\"\nstochastic_depth = 0.4\n[[layers]]\ntype = \"Dense\"\n",
      "sd.toml");
  Network net(spec, 2, 32, 32);
  EXPECT_NEAR(drop_probabilities(*net->backbone()).back(), 0.4 * 15 / 16.0, 1e-12);
}

TEST(ZooVit, OtherImageSizesAreAUsageErrorNamingTheSize) {
  auto vit = make_backbone("vit_b_16", false);
  vit->eval();
  torch::NoGradGuard no_grad;
  try {
    vit->forward(torch::zeros({1, 3, 160, 160}));
    FAIL() << "expected an error";
  } catch (const tabby::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("224x224"), std::string::npos) << e.what();
  }
}

// torchvision's IMAGENET1K_V1 file predates torchvision 0.13's MLP and names
// its Linears mlp.linear_1 / mlp.linear_2; they load as mlp.0 / mlp.3.
TEST(ZooVit, StateDictsWithTheOlderMlpNamesLoad) {
  auto vit = make_backbone("vit_b_16", true, 5);
  TensorMap legacy;
  for (const auto& [name, tensor] : module_state(*vit)) {
    std::string old = name;
    for (const auto& [now, before] : {std::pair<std::string, std::string>{".mlp.0.", ".mlp.linear_1."},
                                      {".mlp.3.", ".mlp.linear_2."}}) {
      const size_t at = old.find(now);
      if (at != std::string::npos) old.replace(at, now.size(), before);
    }
    legacy.emplace(old, tensor.clone().fill_(0.25));
  }
  ASSERT_TRUE(legacy.count("encoder.layers.encoder_layer_11.mlp.linear_2.bias"));
  const LoadReport report = load_backbone_state(*vit, legacy, /*strict=*/true);
  EXPECT_TRUE(report.ok());
  const torch::Tensor loaded = module_state(*vit).at("encoder.layers.encoder_layer_11.mlp.3.bias");
  EXPECT_TRUE(torch::equal(loaded, torch::full_like(loaded, 0.25)));
}
