// Augmentation layers (Keras semantics): they act only in training, RandomFlip
// really mirrors, RandomRotation's factor is a fraction of a full turn with
// positive angles counter-clockwise, rotation by 0 is the identity, the other
// geometric layers move content the documented way, and a seed repeats a draw.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tabby/config/model_spec.h"
#include "tabby/nn/augment.h"
#include "tabby/nn/keras_layers.h"
#include "tabby/nn/network.h"
#include "tabby/util/error.h"

namespace tabby::nn {
namespace {

using nlohmann::json;

Layer make(const std::string& type, json params, std::vector<int64_t> input = {3, 16, 16}) {
  LayerSpec s;
  s.type = type;
  s.name = "aug";
  s.params = std::move(params);
  return make_layer(s, input, 2);
}

// A smooth bright spot on black, (B,1,H,W), centred `dx`, `dy` pixels from the
// image centre (y grows downwards).
torch::Tensor blob(int64_t b, int64_t h, int64_t w, double dx, double dy) {
  auto ys = torch::arange(h, torch::kFloat64).view({h, 1}) - ((h - 1) / 2.0 + dy);
  auto xs = torch::arange(w, torch::kFloat64).view({1, w}) - ((w - 1) / 2.0 + dx);
  auto spot = torch::exp(-(xs * xs + ys * ys) / (2 * 1.5 * 1.5)).to(torch::kFloat32);
  return spot.view({1, 1, h, w}).expand({b, 1, h, w}).contiguous();
}

// Intensity centroid of each image relative to the centre: (B,2) as (dx, dy).
torch::Tensor centroid(const torch::Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  auto img = x.select(1, 0).to(torch::kFloat64);  // (B,H,W)
  auto total = img.sum({1, 2});
  auto ys = torch::arange(h, torch::kFloat64).view({1, h, 1}) - (h - 1) / 2.0;
  auto xs = torch::arange(w, torch::kFloat64).view({1, 1, w}) - (w - 1) / 2.0;
  return torch::stack({(img * xs).sum({1, 2}) / total, (img * ys).sum({1, 2}) / total}, 1);
}

void expect_at(const torch::Tensor& x, double dx, double dy, double tol = 0.3) {
  auto c = centroid(x);
  for (int64_t i = 0; i < c.size(0); ++i) {
    EXPECT_NEAR(c[i][0].item<double>(), dx, tol) << "image " << i;
    EXPECT_NEAR(c[i][1].item<double>(), dy, tol) << "image " << i;
  }
}

TEST(Augment, LayersActOnlyInTraining) {
  ModelSpec spec = parse_model_toml(R"toml(
[[layers]]
type = "RandomFlip"
mode = "horizontal_and_vertical"
[[layers]]
type = "RandomRotation"
factor = 0.2
[[layers]]
type = "RandomContrast"
factor = 0.5
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
)toml",
                                    "aug.toml");
  torch::manual_seed(1);
  Network net(spec, 2, 12, 12);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(net->entries()[i].augmentation()) << i;
  EXPECT_FALSE(net->entries()[3].augmentation());
  auto x = torch::rand({4, 3, 12, 12}) * 255;

  net->eval();
  EXPECT_TRUE(torch::equal(net->forward_range(x, 0, 3), x));
  auto a = net->forward(x), b = net->forward(x);
  EXPECT_TRUE(torch::equal(a, b));

  net->train();
  auto augmented = net->forward_range(x, 0, 3);
  EXPECT_EQ(augmented.sizes(), x.sizes());
  EXPECT_FALSE(torch::allclose(augmented, x));
  EXPECT_FALSE(torch::allclose(net->forward(x), a));
}

TEST(Augment, FlipMirrorsWholeImagesAtRandom) {
  torch::manual_seed(21);
  auto one = torch::rand({1, 3, 6, 9});
  auto x = one.expand({64, 3, 6, 9}).contiguous();
  struct Mode {
    std::string name;
    std::vector<torch::Tensor> allowed;
  };
  const std::vector<Mode> modes = {{"horizontal", {one, one.flip({3})}},
                                   {"vertical", {one, one.flip({2})}},
                                   {"both", {one, one.flip({3}), one.flip({2}), one.flip({2, 3})}},
                                   {"horizontal_and_vertical", {one, one.flip({3}), one.flip({2}), one.flip({2, 3})}}};
  for (const auto& mode : modes) {
    SCOPED_TRACE(mode.name);
    auto layer = make("RandomFlip", {{"mode", mode.name}}, {3, 6, 9});
    layer->train();
    auto y = layer->forward(x);
    std::vector<int> seen(mode.allowed.size(), 0);
    for (int64_t i = 0; i < 64; ++i) {
      int match = -1;
      for (size_t k = 0; k < mode.allowed.size() && match < 0; ++k) {
        if (torch::equal(y.narrow(0, i, 1), mode.allowed[k])) match = static_cast<int>(k);
      }
      ASSERT_GE(match, 0) << "image " << i << " is neither the original nor a mirror image";
      seen[match]++;
    }
    // Each outcome about equally often (64 draws: a missing one would be a broken coin).
    for (size_t k = 0; k < seen.size(); ++k) EXPECT_GE(seen[k], 64 / static_cast<int>(seen.size()) / 3) << k;
  }
}

TEST(Augment, RotationFactorIsAFractionOfAFullTurnCounterClockwise) {
  auto square = torch::rand({2, 3, 10, 10});
  AffineAugment quarter;
  quarter.rotate = true;
  quarter.rotation = {0.25, 0.25};
  // A quarter turn counter-clockwise is rot90 over (H, W): the right edge comes to the top.
  EXPECT_TRUE(torch::allclose(random_affine(square, quarter), square.rot90(1, {2, 3}), 1e-4, 1e-4));
  quarter.rotation = {-0.25, -0.25};
  EXPECT_TRUE(torch::allclose(random_affine(square, quarter), square.rot90(-1, {2, 3}), 1e-4, 1e-4));
  // Half a turn on a non-square image mirrors both axes.
  auto wide = torch::rand({2, 3, 7, 12});
  AffineAugment half;
  half.rotate = true;
  half.rotation = {0.5, 0.5};
  EXPECT_TRUE(torch::allclose(random_affine(wide, half), wide.flip({2, 3}), 1e-4, 1e-4));

  // The same through a layer config, on a non-square image: a spot right of
  // the centre moves above it by the same distance (aspect ratio respected).
  auto layer = make("RandomRotation", {{"factor", {0.25, 0.25}}, {"fill_mode", "constant"}}, {1, 33, 49});
  layer->train();
  auto spot = blob(3, 33, 49, 12, 0);
  expect_at(spot, 12, 0);
  expect_at(layer->forward(spot), 0, -12);
}

TEST(Augment, RotationAnglesSpanPlusMinusFactorTimesFullTurn) {
  torch::manual_seed(8);
  auto layer = make("RandomRotation", {{"factor", 0.1}, {"fill_mode", "constant"}}, {1, 33, 33});
  layer->train();
  auto c = centroid(layer->forward(blob(200, 33, 33, 12, 0)));
  // Counter-clockwise angle of the spot (y grows downwards).
  auto degrees = torch::atan2(-c.select(1, 1), c.select(1, 0)) * (180.0 / M_PI);
  const double lo = degrees.min().item<double>(), hi = degrees.max().item<double>();
  // 0.1 of a full turn is 36 degrees either way.
  EXPECT_GE(lo, -36.5);
  EXPECT_LE(hi, 36.5);
  EXPECT_LT(lo, -30.0);
  EXPECT_GT(hi, 30.0);
  // And the spot stays at its radius: a rotation, not a shift or zoom.
  auto radius = c.norm(2, 1);
  EXPECT_LT((radius - 12).abs().max().item<double>(), 0.3);
}

TEST(Augment, RotationByZeroOrAFullTurnIsTheIdentity) {
  auto x = torch::rand({2, 3, 9, 14});
  for (const std::string fill : {"reflect", "constant", "nearest"}) {
    SCOPED_TRACE(fill);
    auto zero = make("RandomRotation", {{"factor", 0.0}, {"fill_mode", fill}}, {3, 9, 14});
    zero->train();
    EXPECT_TRUE(torch::allclose(zero->forward(x), x, 1e-5, 1e-5));
  }
  AffineAugment full;
  full.rotate = true;
  full.rotation = {1.0, 1.0};
  EXPECT_TRUE(torch::allclose(random_affine(x, full), x, 1e-4, 1e-4));
  // Nothing enabled: the identity too.
  EXPECT_TRUE(torch::allclose(random_affine(x, AffineAugment{}), x, 1e-5, 1e-5));
}

TEST(Augment, TranslationAndZoomMoveContentAsKerasDocuments) {
  // Positive height factor shifts down, negative width factor shifts left.
  auto shift = make("RandomTranslation",
                    {{"height_factor", {0.25, 0.25}}, {"width_factor", {-0.25, -0.25}}, {"fill_mode", "constant"}},
                    {1, 32, 40});
  shift->train();
  expect_at(shift->forward(blob(2, 32, 40, 0, 0)), -10, 8);
  // Height only: no horizontal shift.
  auto down = make("RandomTranslation", {{"height_factor", {0.25, 0.25}}, {"fill_mode", "constant"}}, {1, 32, 40});
  down->train();
  expect_at(down->forward(blob(2, 32, 40, 0, 0)), 0, 8);
  // A positive zoom factor zooms out: content shrinks towards the centre by 1 + f.
  auto zoom = make("RandomZoom", {{"height_factor", {0.5, 0.5}}, {"fill_mode", "constant"}}, {1, 33, 33});
  zoom->train();
  expect_at(zoom->forward(blob(2, 33, 33, 12, -6)), 8, -4);
}

TEST(Augment, ContrastScalesAroundThePerImageChannelMean) {
  auto layer = make("RandomContrast", {{"factor", {0.5, 0.5}}}, {3, 5, 5});
  layer->train();
  auto x = torch::rand({2, 3, 5, 5});
  auto mean = x.mean({2, 3}, true);
  EXPECT_TRUE(torch::allclose(layer->forward(x), (x - mean) * 1.5 + mean, 1e-5, 1e-6));
}

TEST(Augment, SameSeedSameDrawOtherSeedOtherDraw) {
  auto x = torch::rand({16, 3, 12, 12});
  AffineAugment spec;
  spec.rotate = true;
  spec.rotation = {-0.1, 0.1};
  spec.zoom = true;
  spec.zoom_height = spec.zoom_width = {-0.2, 0.2};
  auto draw = [&](uint64_t seed) {
    torch::manual_seed(seed);
    auto flipped = random_flip(x, true, true);
    return std::make_pair(flipped, random_affine(flipped, spec));
  };
  auto a = draw(5), b = draw(5), c = draw(6);
  EXPECT_TRUE(torch::equal(a.first, b.first));
  EXPECT_TRUE(torch::equal(a.second, b.second));
  EXPECT_FALSE(torch::equal(a.second, c.second));
  // Each image of a batch gets its own draw.
  auto same = x.narrow(0, 0, 1).expand({16, 3, 12, 12}).contiguous();
  torch::manual_seed(5);
  auto rotated = random_affine(same, spec);
  EXPECT_FALSE(torch::allclose(rotated.narrow(0, 0, 1), rotated.narrow(0, 1, 1)));
}

TEST(Augment, FillModeNames) {
  EXPECT_EQ(parse_fill_mode("reflect"), FillMode::Reflect);
  EXPECT_EQ(parse_fill_mode("constant"), FillMode::Constant);
  EXPECT_EQ(parse_fill_mode("nearest"), FillMode::Nearest);
  EXPECT_THROW(parse_fill_mode("wrap"), Error);
}

}  // namespace
}  // namespace tabby::nn
