// The torchvision-style augmentations against torchvision itself: each op
// with fixed per-image parameters on a small uint8-valued batch, compared
// with Debian's python3-torchvision (tests/python/make_augment_fixtures.py;
// skipped when it cannot be imported). The parameters here repeat the
// script's.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "support/test_support.h"
#include "tabby/nn/augment.h"
#include "tabby/nn/state_dict.h"
#include "tabby/weights/safetensors.h"

namespace tabby::nn {
namespace {

namespace fs = std::filesystem;

std::string augment_env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

struct AugmentFixtures {
  TensorMap tensors;
  std::string skip_reason;
};

// Made once per script version and shared by the test processes of a run: the
// file name carries a hash of the script and appears by rename when complete.
AugmentFixtures load_augment_fixtures() {
  AugmentFixtures f;
  const fs::path script =
      fs::path(augment_env_or("TABBY_SOURCE_DIR", TABBY_SOURCE_DIR)) / "tests/python/make_augment_fixtures.py";
  std::ifstream in(script);
  std::stringstream text;
  text << in.rdbuf();
  const char* tmp = std::getenv("TABBY_TEST_TMP");
  const fs::path base = tmp ? fs::path(tmp) : fs::temp_directory_path() / "tabby-tests";
  fs::create_directories(base);
  const fs::path file = base / ("augment_fixtures_" + std::to_string(std::hash<std::string>{}(text.str())) + ".safetensors");
  if (!fs::exists(file)) {
    const fs::path work = base / ("augment_fixtures_tmp_" + std::to_string(::getpid()) + ".safetensors");
    const std::string python = augment_env_or("TABBY_PYTHON", "/usr/bin/python3");
    auto r = testing::run_command(testing::shell_quote(python) + " " + testing::shell_quote(script.string()) + " " +
                                  testing::shell_quote(work.string()));
    if (r.exit_code == 3) {
      f.skip_reason = "torchvision not importable by " + python + ": " + r.err;
      return f;
    }
    if (r.exit_code != 0) {
      ADD_FAILURE() << "fixture script failed (" << r.exit_code << "): " << r.err;
      f.skip_reason = "fixture script failed";
      return f;
    }
    fs::rename(work, file);
  }
  f.tensors = to_torch(read_safetensors(file).tensors);
  return f;
}

const AugmentFixtures& augment_fixtures() {
  static const AugmentFixtures made = load_augment_fixtures();
  return made;
}

#define REQUIRE_AUGMENT_FIXTURES(var)      \
  const AugmentFixtures& var = augment_fixtures(); \
  if (!var.skip_reason.empty()) GTEST_SKIP() << var.skip_reason

torch::Tensor unit_input(const AugmentFixtures& f) { return f.tensors.at("input").to(torch::kFloat32) / 255.0; }

torch::Tensor per_image_values(std::vector<double> values) { return torch::tensor(values, torch::kFloat64); }

// Max |a - b|, printed so the test log records how close tabby is.
double parity_diff(const std::string& what, const torch::Tensor& got, const torch::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes()) << what;
  if (got.sizes() != want.sizes()) return 1e30;
  const double d = (got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs().max().item<double>();
  std::printf("[torchvision parity] %-24s max |diff| = %.3g\n", what.c_str(), d);
  return d;
}

TEST(AugmentTorchvision, ColourOpsMatchTorchvisionFunctional) {
  REQUIRE_AUGMENT_FIXTURES(f);
  auto u = unit_input(f);
  EXPECT_LT(parity_diff("adjust_brightness", adjust_brightness(u, per_image_values({0.5, 1.0, 1.7, 0.0})), f.tensors.at("brightness")), 1e-6);
  EXPECT_LT(parity_diff("adjust_contrast", adjust_contrast(u, per_image_values({0.3, 1.0, 1.8, 0.0})), f.tensors.at("contrast")), 1e-6);
  EXPECT_LT(parity_diff("adjust_saturation", adjust_saturation(u, per_image_values({0.2, 1.0, 1.9, 0.0})), f.tensors.at("saturation")), 1e-6);
  EXPECT_LT(parity_diff("adjust_hue", adjust_hue(u, per_image_values({-0.4, 0.25, 0.1, 0.5})), f.tensors.at("hue")), 1e-5);
  EXPECT_LT(parity_diff("adjust_sharpness", adjust_sharpness(u, per_image_values({0.1, 1.0, 1.99, 0.0})), f.tensors.at("sharpness")), 1e-6);
}

TEST(AugmentTorchvision, ColorJitterInAPerImageOrderMatchesTorchvision) {
  REQUIRE_AUGMENT_FIXTURES(f);
  auto order = torch::tensor({0, 1, 2, 3, 3, 2, 1, 0, 1, 3, 0, 2, 2, 0, 3, 1}, torch::kInt64).view({4, 4});
  auto got = color_jitter(unit_input(f), per_image_values({1.3, 0.7, 1.1, 0.9}), per_image_values({0.6, 1.4, 1.2, 0.8}),
                          per_image_values({1.5, 0.5, 0.0, 1.2}), per_image_values({0.1, -0.2, 0.3, -0.45}), order);
  EXPECT_LT(parity_diff("color_jitter", got, f.tensors.at("jitter")), 1e-5);
}

TEST(AugmentTorchvision, ResizedCropMatchesTorchvisionWithoutAntialias) {
  REQUIRE_AUGMENT_FIXTURES(f);
  auto boxes = torch::tensor({0, 0, 13, 17, 2, 3, 5, 7, 1, 4, 11, 9, 6, 0, 7, 17}, torch::kInt64).view({4, 4});
  EXPECT_LT(parity_diff("resized_crop", resized_crop(unit_input(f), boxes), f.tensors.at("resized_crop")), 1e-5);
}

TEST(AugmentTorchvision, TrivialAugmentOpsMatchTorchvisionApplyOp) {
  REQUIRE_AUGMENT_FIXTURES(f);
  auto u = unit_input(f);
  const std::vector<std::pair<AugmentOp, std::vector<double>>> cases = {
      {AugmentOp::ShearX, {0.3, -0.5, 0.99, 0.0}},      {AugmentOp::ShearY, {-0.2, 0.6, 0.0, 0.99}},
      {AugmentOp::TranslateX, {5.0, -7.0, 32.0, 0.5}},  {AugmentOp::TranslateY, {-3.0, 9.0, 0.0, 31.9}},
      {AugmentOp::Rotate, {30.0, -45.0, 135.0, 0.0}},   {AugmentOp::Brightness, {0.5, -0.5, 0.99, -0.99}},
      {AugmentOp::Color, {0.5, -0.5, 0.99, -0.99}},     {AugmentOp::Contrast, {0.5, -0.5, 0.99, -0.99}},
      {AugmentOp::Sharpness, {0.5, -0.5, 0.99, -0.99}}, {AugmentOp::Posterize, {1, 2, 4, 8}},
      {AugmentOp::Solarize, {0.0, 128.0, 200.0, 255.0}}, {AugmentOp::AutoContrast, {0, 0, 0, 0}},
      {AugmentOp::Equalize, {0, 0, 0, 0}}};
  for (const auto& [op, magnitudes] : cases) {
    const std::string name = augment_op_name(op);
    SCOPED_TRACE(name);
    auto ops = torch::full({4}, static_cast<int64_t>(op), torch::kInt64);
    const bool geometric = op <= AugmentOp::Rotate;
    if (!geometric) {
      EXPECT_LT(parity_diff(name, apply_augment_ops(u, ops, per_image_values(magnitudes), false), f.tensors.at("op_" + name)), 1e-5);
      continue;
    }
    EXPECT_LT(parity_diff(name + " bilinear", apply_augment_ops(u, ops, per_image_values(magnitudes), true),
                       f.tensors.at("op_" + name + "_bilinear")),
              1e-4);
    // Nearest sampling: a sample point within rounding of a pixel boundary
    // may round the other way, so a few pixels may differ.
    auto got = apply_augment_ops(u, ops, per_image_values(magnitudes), false);
    auto want = f.tensors.at("op_" + name + "_nearest");
    const double differing = (got - want).abs().gt(1e-6).to(torch::kFloat64).mean().item<double>();
    std::printf("[torchvision parity] %-24s nearest: %.2f%% of values differ\n", name.c_str(), 100 * differing);
    EXPECT_LT(differing, 0.01) << name;
  }
}

TEST(AugmentTorchvision, MagnitudeBinsAreTorchvisions) {
  REQUIRE_AUGMENT_FIXTURES(f);
  // float32 bins up to 135 (degrees): LibTorch 1.13 matches torchvision exactly, 2.x's linspace differs by an ulp.
  constexpr double kBinTolerance = 1e-4;
  EXPECT_LT(parity_diff("magnitudes (wide)", augment_magnitudes(true, 31, 13, 17), f.tensors.at("magnitudes_wide")),
            kBinTolerance);
  EXPECT_LT(parity_diff("magnitudes (RandAugment)", augment_magnitudes(false, 31, 13, 17), f.tensors.at("magnitudes_rand")),
            kBinTolerance);
  // Signed ops: ShearX .. Sharpness, in both spaces.
  auto expected = torch::zeros({kAugmentOpCount}, torch::kUInt8);
  expected.slice(0, 1, 10).fill_(1);
  EXPECT_TRUE(torch::equal(f.tensors.at("signed_wide"), expected));
  EXPECT_TRUE(torch::equal(f.tensors.at("signed_rand"), expected));
}

}  // namespace
}  // namespace tabby::nn
