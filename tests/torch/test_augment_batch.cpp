// The torchvision-style augmentations' random parts and plumbing:
// RandomResizedCrop's boxes follow torchvision's get_params (area fraction in
// `scale`, aspect in `ratio`, the centre-crop fallback), zero strength is the
// identity, a seed repeats a draw, colour ops respect the value range the
// model feeds them, the layers validate their settings, the short notation
// parses, and BatchAugmenter runs a whole spec. CUDA, where present, gives
// what the CPU gives for fixed parameters.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tabby/config/augment_spec.h"
#include "tabby/config/model_spec.h"
#include "tabby/nn/augment.h"
#include "tabby/nn/batch_augmenter.h"
#include "tabby/nn/keras_layers.h"
#include "tabby/nn/network.h"
#include "tabby/util/error.h"
#include "tabby/util/torch_compat.h"

namespace tabby::nn {
namespace {

using nlohmann::json;

Layer make_aug_layer(const std::string& type, json params, std::vector<int64_t> input = {3, 16, 16}) {
  LayerSpec s;
  s.type = type;
  s.name = "aug";
  s.params = std::move(params);
  auto layer = make_layer(s, input, 2);
  layer->train();
  return layer;
}

// A batch of distinct images with integer values in [0, 255].
torch::Tensor pixel_batch(int64_t b, int64_t h, int64_t w, uint64_t seed = 3) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {b, 3, h, w}, torch::kFloat32);
}

TEST(AugmentBatch, ResizedCropBoxesFollowScaleAndRatio) {
  torch::manual_seed(11);
  const int64_t n = 2000, h = 20, w = 30;
  const double lo = 0.25, hi = 0.6, rlo = 0.5, rhi = 2.0;
  auto boxes = random_resized_crop_boxes(n, h, w, {lo, hi}, {rlo, rhi}, torch::kCPU).to(torch::kFloat64);
  auto top = boxes.select(1, 0), left = boxes.select(1, 1), ch = boxes.select(1, 2), cw = boxes.select(1, 3);
  EXPECT_TRUE((top >= 0).all().item<bool>() && (left >= 0).all().item<bool>());
  EXPECT_TRUE((top + ch <= h).all().item<bool>() && (left + cw <= w).all().item<bool>());
  EXPECT_TRUE((ch >= 1).all().item<bool>() && (cw >= 1).all().item<bool>());
  // Sides are rounded to whole pixels: some real sides within half a pixel
  // must give an area fraction in [lo, hi] and an aspect in [rlo, rhi].
  EXPECT_TRUE(((cw + 0.5) * (ch + 0.5) / (h * w) >= lo).all().item<bool>());
  EXPECT_TRUE(((cw - 0.5) * (ch - 0.5) / (h * w) <= hi).all().item<bool>());
  EXPECT_TRUE(((cw + 0.5) / (ch - 0.5) >= rlo).all().item<bool>());
  EXPECT_TRUE(((cw - 0.5) / (ch + 0.5) <= rhi).all().item<bool>());
  // And the draws cover the ranges: fractions near both ends, log-aspects on both sides of 0.
  auto fraction = cw * ch / (h * w);
  EXPECT_LT(fraction.min().item<double>(), lo + 0.03);
  EXPECT_GT(fraction.max().item<double>(), hi - 0.03);
  auto log_aspect = torch::log(cw / ch);
  EXPECT_LT(log_aspect.min().item<double>(), std::log(rlo) + 0.15);
  EXPECT_GT(log_aspect.max().item<double>(), std::log(rhi) - 0.3);
  // Positions span the free room: some crops touch the top-left, some the bottom-right.
  EXPECT_TRUE((top == 0).any().item<bool>());
  EXPECT_TRUE((left + cw == w).any().item<bool>());
  EXPECT_NEAR(log_aspect.mean().item<double>(), 0.0, 0.1);
}

TEST(AugmentBatch, ResizedCropFallsBackToTheCentredWholeImage) {
  torch::manual_seed(2);
  // An aspect of 3 to 4 cannot fit 90% of a square: every try fails, and the
  // fallback is the full width with the height for aspect 3, centred.
  auto boxes = random_resized_crop_boxes(50, 20, 20, {0.9, 1.0}, {3.0, 4.0}, torch::kCPU);
  auto expected = torch::tensor({6, 0, 7, 20}, torch::kInt64).expand({50, 4});
  EXPECT_TRUE(torch::equal(boxes, expected)) << boxes.slice(0, 0, 3);
  // Within the ratio range the fallback is the whole image.
  boxes = random_resized_crop_boxes(5, 20, 20, {1.0, 1.0}, {0.5, 0.9}, torch::kCPU);
  EXPECT_TRUE(torch::equal(boxes.select(1, 2), torch::full({5}, 20, torch::kInt64)));
}

TEST(AugmentBatch, ZeroStrengthIsTheIdentity) {
  auto x = pixel_batch(6, 12, 15);
  // The whole image, resampled at its own size.
  auto whole = make_aug_layer("RandomResizedCrop", {{"scale", {1.0, 1.0}}, {"ratio", {0.5, 2.0}}}, {3, 12, 15});
  EXPECT_TRUE(torch::allclose(whole->forward(x), x, 1e-4, 1e-3));
  // Colour jitter with all factors 0: exactly the input.
  auto still = make_aug_layer("RandomColorJitter", {{"brightness_factor", 0.0}, {"contrast_factor", 0.0},
                                                     {"saturation_factor", 0.0}, {"hue_factor", 0.0}});
  EXPECT_TRUE(torch::allclose(still->forward(x), x, 0, 1e-4));
  // Op by op at magnitude 0: the identity for the geometric and blend ops,
  // and posterize keeping 8 bits.
  auto u = x / 255.0;
  for (int64_t op = 0; op <= static_cast<int64_t>(AugmentOp::Posterize); ++op) {
    SCOPED_TRACE(augment_op_name(static_cast<AugmentOp>(op)));
    const double magnitude = op == static_cast<int64_t>(AugmentOp::Posterize) ? 8.0 : 0.0;
    auto y = apply_augment_ops(u, torch::full({6}, op, torch::kInt64), torch::full({6}, magnitude, torch::kFloat64), false);
    EXPECT_TRUE(torch::allclose(y, u, 0, 1e-6));
  }
}

TEST(AugmentBatch, SameSeedSameDrawAndEachImageItsOwn) {
  auto one = pixel_batch(1, 16, 16);
  auto x = one.expand({12, 3, 16, 16}).contiguous();
  for (const auto& [type, params] : std::vector<std::pair<std::string, json>>{
           {"RandomResizedCrop", json::object()},
           {"RandomColorJitter", {{"brightness_factor", 0.4}, {"contrast_factor", 0.4}, {"saturation_factor", 0.4},
                                  {"hue_factor", 0.1}}},
           {"TrivialAugmentWide", json::object()},
           {"RandAugment", {{"num_ops", 2}, {"magnitude", 9}}}}) {
    SCOPED_TRACE(type);
    auto layer = make_aug_layer(type, params);
    torch::manual_seed(5);
    auto a = layer->forward(x);
    torch::manual_seed(5);
    auto b = layer->forward(x);
    torch::manual_seed(6);
    auto c = layer->forward(x);
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::equal(a, c));
    EXPECT_EQ(a.sizes(), x.sizes());
    // The copies of one image came out differently (per-image parameters).
    int distinct = 0;
    for (int64_t i = 1; i < 12; ++i) distinct += !torch::equal(a[i], a[0]);
    EXPECT_GE(distinct, 6);
    // Outputs stay within the pixel range.
    EXPECT_GE(a.min().item<double>(), -1e-3);
    EXPECT_LE(a.max().item<double>(), 255.0 + 1e-3);
  }
}

TEST(AugmentBatch, TrivialAugmentDrawsEveryOpAndBinUniformly) {
  // Compare the layer with apply_augment_ops on the draws it documents: op,
  // then bin, then sign, each one per image.
  const int64_t b = 280;
  auto u = pixel_batch(b, 8, 8) / 255.0;
  torch::manual_seed(9);
  auto got = trivial_augment_wide(u, 31, false);
  torch::manual_seed(9);
  auto op = torch::randint(kAugmentOpCount, {b}, torch::kInt64);
  auto bin = torch::randint(31, {b}, torch::kInt64);
  auto negate = torch::randint(2, {b}, torch::kInt64) == 1;
  auto table = augment_magnitudes(true, 31, 8, 8);
  auto magnitude = table.index({op, bin});
  auto signed_op = (op >= 1) & (op <= 9);
  magnitude = torch::where(signed_op & negate, -magnitude, magnitude);
  EXPECT_TRUE(torch::equal(got, apply_augment_ops(u, op, magnitude, false)));
  // Every op is drawn (280 draws over 14 ops).
  EXPECT_EQ(std::get<0>(torch::_unique(op)).numel(), kAugmentOpCount);
}

TEST(AugmentBatch, ColourOpsClampToTheLayersValueRange) {
  auto x = pixel_batch(8, 10, 10);
  const json strong = {{"brightness_factor", {1.8, 1.9}}, {"contrast_factor", 0.5}, {"saturation_factor", 0.5}};
  auto in_pixels = make_aug_layer("RandomColorJitter", strong);
  torch::manual_seed(4);
  auto y = in_pixels->forward(x);
  EXPECT_LE(y.max().item<double>(), 255.0);
  EXPECT_GT(y.max().item<double>(), 254.0);  // brightness 1.8+ saturates
  // The same layer after a [-1, 1] rescaling gives the same images, rescaled.
  json signed_range = strong;
  signed_range["value_range"] = {-1.0, 1.0};
  auto in_unit = make_aug_layer("RandomColorJitter", signed_range);
  torch::manual_seed(4);
  auto z = in_unit->forward(x / 127.5 - 1.0);
  EXPECT_LE(z.max().item<double>(), 1.0);
  EXPECT_TRUE(torch::allclose((z + 1.0) * 127.5, y, 1e-4, 1e-2));
}

TEST(AugmentBatch, NetworkGivesColourLayersTheRangeOfTheirInput) {
  // As tutorial model 3: Rescaling to [-1, 1] before the augmentation.
  ModelSpec spec = parse_model_toml(R"toml(
[[layers]]
type = "Rescaling"
scale = 0.00784313725490196
offset = -1.0
[[layers]]
type = "RandomColorJitter"
brightness_factor = [1.9, 1.9]
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
)toml",
                                    "jitter.toml");
  Network net(spec, 2, 8, 8);
  net->train();
  torch::manual_seed(1);
  auto y = net->forward_range(torch::full({2, 3, 8, 8}, 200.0), 0, 2);
  // 200 is 0.569 in [-1, 1], i.e. 0.784 of the range; brightness 1.9 saturates at 1.
  EXPECT_NEAR(y.max().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(y.min().item<double>(), 1.0, 1e-6);

  // After per-channel normalisation the range is unknown: the model must say.
  ModelSpec after_norm = parse_model_toml(R"toml(
[[layers]]
type = "Normalization"
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]
[[layers]]
type = "TrivialAugmentWide"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
)toml",
                                          "after_norm.toml");
  try {
    Network bad(after_norm, 2, 8, 8);
    ADD_FAILURE() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("range of its input values"), std::string::npos) << e.what();
  }
  // Augmentation layers are training-only: in eval mode the network skips them.
  net->eval();
  auto x = torch::full({1, 3, 8, 8}, 200.0);
  EXPECT_TRUE(torch::allclose(net->forward_range(x, 0, 2), x / 127.5 - 1.0));
}

TEST(AugmentBatch, BadLayerSettingsAreUsageErrors) {
  const std::vector<std::pair<std::string, json>> bad = {
      {"RandomResizedCrop", {{"scale", {0.5, 0.2}}}},
      {"RandomResizedCrop", {{"scale", 1.5}}},
      {"RandomResizedCrop", {{"ratio", {0.0, 1.0}}}},
      {"RandomColorJitter", json::object()},
      {"RandomColorJitter", {{"hue_factor", 0.7}}},
      {"RandomColorJitter", {{"brightness_factor", -0.1}}},
      {"RandomColorJitter", {{"contrast_factor", {1.2, 0.8}}}},
      {"RandomColorJitter", {{"brightness_factor", 0.2}, {"value_range", {1, 0}}}},
      {"TrivialAugmentWide", {{"num_magnitude_bins", 1}}},
      {"TrivialAugmentWide", {{"interpolation", "bicubic"}}},
      {"RandAugment", {{"magnitude", 31}}},
      {"RandAugment", {{"num_ops", 0}}},
      {"RandAugment", {{"num_ops", 1.5}}},
  };
  for (const auto& [type, params] : bad) {
    SCOPED_TRACE(type + " " + params.dump());
    try {
      make_aug_layer(type, params);
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("layer 'aug' (" + type + ")"), std::string::npos) << e.what();
    }
  }
  // A one-channel input has no colours.
  EXPECT_THROW(make_aug_layer("TrivialAugmentWide", json::object(), {1, 8, 8}), UsageError);
}

TEST(AugmentBatch, ShortNotation) {
  auto layers = parse_augment_spec("crop, crop=0.5, crop=0.3-0.9, jitter=0.4, jitter=0.2,0.3,0,0.1, trivial, "
                                   "randaugment, randaugment=3, randaugment=2,12, flip");
  ASSERT_EQ(layers.size(), 10u);
  EXPECT_EQ(layers[0].type, "RandomResizedCrop");
  EXPECT_FALSE(layers[0].has("scale"));
  EXPECT_EQ(layers[1].params["scale"], json({0.5, 1.0}));
  EXPECT_EQ(layers[2].params["scale"], json({0.3, 0.9}));
  EXPECT_EQ(layers[3].type, "RandomColorJitter");
  EXPECT_EQ(layers[3].params, json({{"brightness_factor", 0.4}, {"contrast_factor", 0.4}, {"saturation_factor", 0.4}}));
  EXPECT_EQ(layers[4].params, json({{"brightness_factor", 0.2}, {"contrast_factor", 0.3}, {"hue_factor", 0.1}}));
  EXPECT_EQ(layers[5].type, "TrivialAugmentWide");
  EXPECT_EQ(layers[6].type, "RandAugment");
  EXPECT_TRUE(layers[6].params.empty());
  EXPECT_EQ(layers[7].params, json({{"num_ops", 3}}));
  EXPECT_EQ(layers[8].params, json({{"num_ops", 2}, {"magnitude", 12}}));
  EXPECT_EQ(layers[9].type, "RandomFlip");
  // Every parsed layer builds.
  for (const auto& l : layers) EXPECT_NO_THROW(make_layer(l, {3, 16, 16}, 2)) << l.type;

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"crop=0", "crop=S or crop=S1-S2"},      {"crop=0.9-0.5", "crop=S or crop=S1-S2"},
      {"crop=1.5", "crop=S or crop=S1-S2"},    {"crop=a", "crop=S or crop=S1-S2"},
      {"jitter", "jitter=F or jitter=B,C,S"},  {"jitter=0.1,0.2", "jitter=F or jitter=B,C,S"},
      {"jitter=0.1,0.1,0.1,0.6", "hue 0 to 0.5"}, {"jitter=0,0,0", "changes nothing"},
      {"jitter=-1", "jitter=F"},               {"trivial=3", "takes no value"},
      {"randaugment=0", "N ops 1 to 16"},      {"randaugment=2,31", "magnitude M 0 to 30"},
      {"randaugment=2.5", "N ops"},            {"flip,0.3", "takes no list"},
      {"rotation=0.1,0.2", "takes one value"}, {"trivial,,flip", "empty item"}};
  for (const auto& [text, message] : bad) {
    SCOPED_TRACE(text);
    try {
      parse_augment_spec(text);
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
  }
}

TEST(AugmentBatch, BatchAugmenterRunsASpecOnPixelBatches) {
  BatchAugmenter augment(parse_augment_spec("flip,crop=0.5,jitter=0.4,0.4,0.4,0.1,trivial,randaugment=2,9"));
  auto x = pixel_batch(6, 20, 24);
  torch::manual_seed(3);
  auto a = augment(x);
  torch::manual_seed(3);
  auto b = augment(x);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_FALSE(a.requires_grad());
  EXPECT_GE(a.min().item<double>(), 0.0);
  EXPECT_LE(a.max().item<double>(), 255.0 + 1e-3);
  EXPECT_FALSE(torch::allclose(a, x));

  LayerSpec dense;
  dense.type = "Dense";
  EXPECT_THROW(BatchAugmenter({dense}), UsageError);
  EXPECT_THROW(augment(torch::zeros({2, 1, 8, 8})), Error);
  EXPECT_TRUE(BatchAugmenter({}).empty());
}

TEST(AugmentBatch, LayersRunInFloat32UnderAutocast) {
  // The trainer runs the model under autocast; the augmentation layers keep
  // float32 (a bfloat16 sampling grid would be off by pixels, and mixed
  // dtypes would break the per-op index_copy_).
  auto x = pixel_batch(8, 16, 16);
  const bool was = torch_compat::autocast_enabled(c10::DeviceType::CPU);
  const auto was_dtype = torch_compat::autocast_dtype(c10::DeviceType::CPU);
  torch_compat::set_autocast_dtype(c10::DeviceType::CPU, torch::kBFloat16);
  torch_compat::set_autocast_enabled(c10::DeviceType::CPU, true);
  BatchAugmenter augment(parse_augment_spec("crop=0.5,jitter=0.4,0.4,0.4,0.1,trivial,randaugment=3,20"));
  torch::manual_seed(1);
  torch::Tensor y;
  EXPECT_NO_THROW(y = augment(x));
  torch_compat::set_autocast_enabled(c10::DeviceType::CPU, was);
  torch_compat::set_autocast_dtype(c10::DeviceType::CPU, was_dtype);
  ASSERT_TRUE(y.defined());
  EXPECT_EQ(y.scalar_type(), torch::kFloat32);
  torch::manual_seed(1);
  EXPECT_TRUE(torch::equal(y, augment(x)));  // as without autocast
}

TEST(AugmentBatch, CudaGivesWhatTheCpuGives) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  auto u = pixel_batch(14, 12, 15) / 255.0;
  auto op = torch::arange(kAugmentOpCount, torch::kInt64);
  auto magnitude = torch::tensor({0.0, 0.3, -0.2, 5.0, -3.0, 30.0, 0.5, -0.5, 0.9, 0.7, 3.0, 100.0, 0.0, 0.0},
                                 torch::kFloat64);
  auto cpu = apply_augment_ops(u, op, magnitude, true);
  auto gpu = apply_augment_ops(u.cuda(), op.cuda(), magnitude.cuda(), true).cpu();
  EXPECT_TRUE(torch::allclose(cpu, gpu, 1e-4, 1e-4)) << (cpu - gpu).abs().max();
  auto boxes = torch::tensor({0, 0, 12, 15, 2, 3, 5, 7}, torch::kInt64).view({2, 4});
  EXPECT_TRUE(torch::allclose(resized_crop(u.narrow(0, 0, 2), boxes), resized_crop(u.narrow(0, 0, 2).cuda(), boxes.cuda()).cpu(),
                              1e-4, 1e-4));
  // The random layers run on the device too.
  BatchAugmenter augment(parse_augment_spec("crop,jitter=0.4,trivial,randaugment"));
  auto y = augment((u * 255).cuda());
  EXPECT_TRUE(y.is_cuda());
  EXPECT_EQ(y.sizes(), u.sizes());
}

}  // namespace
}  // namespace tabby::nn
