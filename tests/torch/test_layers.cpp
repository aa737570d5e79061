// Keras layer semantics of the declarable layers: output shapes and values
// against TensorFlow's padding rules (a naive reference written here), the
// training-only behaviour of Dropout and BatchNormalization, activations,
// Glorot-uniform initialisation, and errors that name the layer and key.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tabby/config/model_spec.h"
#include "tabby/nn/keras_layers.h"
#include "tabby/nn/network.h"
#include "tabby/util/error.h"

namespace tabby::nn {
namespace {

using nlohmann::json;

LayerSpec spec_of(const std::string& type, json params = json::object(), const std::string& name = "layer_x") {
  LayerSpec s;
  s.type = type;
  s.name = name;
  s.params = std::move(params);
  return s;
}

torch::Tensor param(const Layer& layer, const std::string& name) {
  auto params = layer->named_parameters(false);
  auto* p = params.find(name);
  return p ? *p : torch::Tensor();
}

// The message of the tabby::Error that building `spec` on `input` throws.
std::string build_error(const LayerSpec& spec, std::vector<int64_t> input = {3, 8, 8}) {
  try {
    auto layer = make_layer(spec, input, 2);
    infer_output_shape(*layer, input);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception> ") + e.what();
  }
  return "";
}

// TensorFlow's output size: valid = floor((n - k) / s) + 1, same = ceil(n / s).
int64_t tf_out(int64_t n, int64_t k, int64_t s, bool same) { return same ? (n + s - 1) / s : (n - k) / s + 1; }

// TensorFlow's leading pad for "same": half of the total, rounded down (the
// odd pixel goes to the bottom / right).
int64_t tf_pad_before(int64_t n, int64_t k, int64_t s) {
  const int64_t total = std::max<int64_t>((tf_out(n, k, s, true) - 1) * s + k - n, 0);
  return total / 2;
}

// Direct convolution as TensorFlow defines it. x is (1,C,H,W), w (F,C,kh,kw).
torch::Tensor reference_conv(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b, int64_t sh,
                             int64_t sw, bool same) {
  const int64_t c = x.size(1), h = x.size(2), wd = x.size(3), f = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t oh = tf_out(h, kh, sh, same), ow = tf_out(wd, kw, sw, same);
  const int64_t top = same ? tf_pad_before(h, kh, sh) : 0, left = same ? tf_pad_before(wd, kw, sw) : 0;
  auto xa = x.accessor<float, 4>();
  auto wa = w.accessor<float, 4>();
  torch::Tensor out = torch::zeros({1, f, oh, ow});
  auto oa = out.accessor<float, 4>();
  for (int64_t o = 0; o < f; ++o) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        double sum = b.defined() ? b[o].item<double>() : 0.0;
        for (int64_t ci = 0; ci < c; ++ci) {
          for (int64_t u = 0; u < kh; ++u) {
            for (int64_t v = 0; v < kw; ++v) {
              const int64_t y = i * sh + u - top, xx = j * sw + v - left;
              if (y < 0 || y >= h || xx < 0 || xx >= wd) continue;  // zero padding
              sum += static_cast<double>(xa[0][ci][y][xx]) * wa[o][ci][u][v];
            }
          }
        }
        oa[0][o][i][j] = static_cast<float>(sum);
      }
    }
  }
  return out;
}

// Pooling as TensorFlow defines it: "same" windows see only the real pixels
// (max ignores the padding; average divides by the real pixel count).
torch::Tensor reference_pool(const torch::Tensor& x, int64_t ph, int64_t pw, int64_t sh, int64_t sw, bool same,
                             bool max) {
  const int64_t c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = tf_out(h, ph, sh, same), ow = tf_out(w, pw, sw, same);
  const int64_t top = same ? tf_pad_before(h, ph, sh) : 0, left = same ? tf_pad_before(w, pw, sw) : 0;
  auto xa = x.accessor<float, 4>();
  torch::Tensor out = torch::zeros({1, c, oh, ow});
  auto oa = out.accessor<float, 4>();
  for (int64_t ci = 0; ci < c; ++ci) {
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        double acc = max ? -1e30 : 0.0;
        int count = 0;
        for (int64_t u = 0; u < ph; ++u) {
          for (int64_t v = 0; v < pw; ++v) {
            const int64_t y = i * sh + u - top, xx = j * sw + v - left;
            if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
            acc = max ? std::max<double>(acc, xa[0][ci][y][xx]) : acc + xa[0][ci][y][xx];
            ++count;
          }
        }
        oa[0][ci][i][j] = static_cast<float>(max ? acc : acc / count);
      }
    }
  }
  return out;
}

// --- Conv2D ---------------------------------------------------------------

TEST(Conv2D, OutputShapesFollowTensorFlowsFormula) {
  for (const std::string padding : {"valid", "same"}) {
    const bool same = padding == "same";
    for (int64_t n : {7, 8, 9, 15}) {
      for (int64_t k : {1, 2, 3, 5}) {
        for (int64_t s : {1, 2, 3}) {
          // Rectangular input and kernel, so swapped axes would show.
          const int64_t h = n, w = n + 3, kh = k, kw = k == 1 ? 2 : k - 1;
          SCOPED_TRACE(padding + " n=" + std::to_string(n) + " k=" + std::to_string(k) + " s=" + std::to_string(s));
          auto layer = make_layer(
              spec_of("Conv2D", {{"filters", 4}, {"kernel_size", {kh, kw}}, {"strides", s}, {"padding", padding}}),
              {2, h, w}, 2);
          auto shape = infer_output_shape(*layer, {2, h, w});
          EXPECT_EQ(shape, (std::vector<int64_t>{4, tf_out(h, kh, s, same), tf_out(w, kw, s, same)}));
          auto y = layer->forward(torch::rand({3, 2, h, w}));
          EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{3, 4, tf_out(h, kh, s, same), tf_out(w, kw, s, same)}));
        }
      }
    }
  }
}

TEST(Conv2D, ValuesMatchTensorFlowPaddingIncludingTheOddPixel) {
  torch::manual_seed(3);
  struct Case {
    int64_t h, w, kh, kw, sh, sw;
    std::string padding;
  };
  // Even sizes with stride 2 and even kernels are where TF pads only bottom/right.
  const std::vector<Case> cases = {{8, 8, 3, 3, 2, 2, "same"}, {7, 9, 3, 3, 2, 2, "same"}, {6, 5, 2, 2, 1, 1, "same"},
                                   {9, 6, 5, 3, 2, 3, "same"}, {8, 7, 4, 4, 3, 2, "same"}, {7, 7, 3, 3, 1, 1, "same"},
                                   {9, 8, 3, 2, 2, 1, "valid"}, {5, 5, 5, 5, 1, 1, "valid"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.padding + " " + std::to_string(c.h) + "x" + std::to_string(c.w) + " k" + std::to_string(c.kh) +
                 "x" + std::to_string(c.kw) + " s" + std::to_string(c.sh) + "x" + std::to_string(c.sw));
    auto layer = make_layer(spec_of("Conv2D", {{"filters", 3},
                                               {"kernel_size", {c.kh, c.kw}},
                                               {"strides", {c.sh, c.sw}},
                                               {"padding", c.padding}}),
                            {2, c.h, c.w}, 2);
    {
      torch::NoGradGuard no_grad;
      param(layer, "bias").uniform_(-1, 1);  // Keras starts at zero; make the bias count
    }
    auto x = torch::randn({1, 2, c.h, c.w});
    torch::Tensor y;
    {
      torch::NoGradGuard no_grad;
      y = layer->forward(x);
    }
    auto expected = reference_conv(x, param(layer, "weight").detach(), param(layer, "bias").detach(), c.sh, c.sw,
                                   c.padding == "same");
    ASSERT_EQ(y.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(y, expected, 1e-4, 1e-5)) << (y - expected).abs().max().item<float>();
  }
}

TEST(Conv2D, ActivationBiasAndParameterNames) {
  auto relu = make_layer(spec_of("Conv2D", {{"filters", 5}, {"kernel_size", 3}, {"activation", "relu"}}), {3, 6, 6}, 2);
  EXPECT_EQ(param(relu, "weight").sizes().vec(), (std::vector<int64_t>{5, 3, 3, 3}));
  EXPECT_EQ(param(relu, "bias").sizes().vec(), (std::vector<int64_t>{5}));
  EXPECT_TRUE(torch::equal(param(relu, "bias"), torch::zeros({5})));  // Keras: zero biases
  auto y = relu->forward(torch::randn({2, 3, 6, 6}));
  EXPECT_GE(y.min().item<float>(), 0.0f);
  EXPECT_GT(y.max().item<float>(), 0.0f);

  auto linear = make_layer(spec_of("Conv2D", {{"filters", 5}, {"kernel_size", 3}, {"use_bias", false}}), {3, 6, 6}, 2);
  EXPECT_FALSE(param(linear, "bias").defined());
  EXPECT_EQ(linear->named_parameters().size(), 1u);
  // Without an activation the output takes both signs.
  auto z = linear->forward(torch::randn({2, 3, 6, 6}));
  EXPECT_LT(z.min().item<float>(), 0.0f);
}

// --- initialisation -------------------------------------------------------

void expect_glorot_uniform(const torch::Tensor& w, int64_t fan_in, int64_t fan_out) {
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  const double max_abs = w.abs().max().item<double>();
  EXPECT_LE(max_abs, limit * (1 + 1e-6));
  // Enough samples that a uniform draw reaches near the bound, and PyTorch's
  // default (Kaiming-uniform, bound 1/sqrt(fan_in)) would differ.
  EXPECT_GT(max_abs, 0.97 * limit);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.05 * limit);
  EXPECT_NEAR(w.var().item<double>(), limit * limit / 3.0, 0.1 * limit * limit / 3.0);
}

TEST(Initialisation, KernelsAreGlorotUniformAsInKeras) {
  torch::manual_seed(11);
  // Conv2D: fan_in = kh*kw*in_channels, fan_out = kh*kw*filters.
  auto conv = make_layer(spec_of("Conv2D", {{"filters", 64}, {"kernel_size", 3}}), {3, 8, 8}, 2);
  expect_glorot_uniform(param(conv, "weight"), 3 * 9, 64 * 9);
  auto wide = make_layer(spec_of("Conv2D", {{"filters", 16}, {"kernel_size", {1, 5}}}), {32, 8, 8}, 2);
  expect_glorot_uniform(param(wide, "weight"), 32 * 5, 16 * 5);
  // Dense: fan_in = inputs, fan_out = units.
  auto dense = make_layer(spec_of("Dense", {{"units", 60}}), {300}, 2);
  expect_glorot_uniform(param(dense, "weight"), 300, 60);
  EXPECT_TRUE(torch::equal(param(dense, "bias"), torch::zeros({60})));
}

// --- preprocessing --------------------------------------------------------

TEST(Rescaling, ScalesAndOffsets) {
  auto layer = make_layer(spec_of("Rescaling", {{"scale", 1.0 / 127.5}, {"offset", -1.0}}), {3, 4, 4}, 2);
  auto x = torch::tensor({0.0f, 127.5f, 255.0f}).view({1, 3, 1, 1}).expand({1, 3, 4, 4});
  auto y = layer->forward(x);
  EXPECT_NEAR(y[0][0][0][0].item<float>(), -1.0f, 1e-6);
  EXPECT_NEAR(y[0][1][2][3].item<float>(), 0.0f, 1e-6);
  EXPECT_NEAR(y[0][2][1][1].item<float>(), 1.0f, 1e-6);
  // Offset defaults to zero; no parameters; the shape is unchanged.
  auto plain = make_layer(spec_of("Rescaling", {{"scale", 0.5}}), {3, 4, 4}, 2);
  EXPECT_TRUE(torch::allclose(plain->forward(x), x * 0.5));
  EXPECT_TRUE(plain->parameters().empty());
  EXPECT_EQ(infer_output_shape(*plain, {3, 4, 4}), (std::vector<int64_t>{3, 4, 4}));
  EXPECT_TRUE(plain->is_deterministic_when_frozen());
  EXPECT_FALSE(plain->is_augmentation());
}

TEST(Normalization, SubtractsTheMeanAndDividesByTheStdPerChannel) {
  auto layer = make_layer(
      spec_of("Normalization", {{"mean", {0.485, 0.456, 0.406}}, {"std", {0.229, 0.224, 0.225}}, {"scale", 1.0 / 255}}),
      {3, 2, 2}, 2);
  auto x = torch::rand({2, 3, 2, 2}) * 255;
  auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(layer->forward(x), (x / 255 - mean) / std, 1e-5, 1e-5));
  EXPECT_TRUE(layer->parameters().empty());  // fixed statistics, not trained
}

// --- pooling, flatten -----------------------------------------------------

TEST(Pooling, ShapesAndValuesFollowTensorFlow) {
  torch::manual_seed(5);
  struct Case {
    int64_t h, w;
    json pool, strides;
    std::string padding;
  };
  const std::vector<Case> cases = {
      {6, 6, 2, nullptr, "valid"},  {7, 5, 2, nullptr, "valid"},  {7, 9, 3, 2, "valid"},     {5, 5, 2, nullptr, "same"},
      {7, 6, 3, 2, "same"},         {8, 7, {2, 3}, {1, 2}, "same"}, {9, 9, {2, 3}, {1, 2}, "valid"}};
  for (const bool max : {true, false}) {
    for (const auto& c : cases) {
      SCOPED_TRACE(std::string(max ? "max " : "avg ") + c.padding + " " + std::to_string(c.h) + "x" +
                   std::to_string(c.w) + " pool " + c.pool.dump() + " strides " + c.strides.dump());
      json params = {{"pool_size", c.pool}, {"padding", c.padding}};
      if (!c.strides.is_null()) params["strides"] = c.strides;
      auto layer = make_layer(spec_of(max ? "MaxPooling2D" : "AveragePooling2D", params), {2, c.h, c.w}, 2);
      const int64_t ph = c.pool.is_array() ? c.pool[0].get<int64_t>() : c.pool.get<int64_t>();
      const int64_t pw = c.pool.is_array() ? c.pool[1].get<int64_t>() : c.pool.get<int64_t>();
      // Keras: strides default to the pool size.
      const int64_t sh = c.strides.is_null() ? ph : c.strides.is_array() ? c.strides[0].get<int64_t>() : c.strides.get<int64_t>();
      const int64_t sw = c.strides.is_null() ? pw : c.strides.is_array() ? c.strides[1].get<int64_t>() : c.strides.get<int64_t>();
      // Negative values too, so max-pooling over zero padding would show.
      auto x = torch::randn({1, 2, c.h, c.w}) - 3;
      auto y = layer->forward(x);
      auto expected = reference_pool(x, ph, pw, sh, sw, c.padding == "same", max);
      ASSERT_EQ(y.sizes(), expected.sizes());
      EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-5));
      EXPECT_EQ(infer_output_shape(*layer, {2, c.h, c.w}), expected.sizes().slice(1).vec());
      EXPECT_TRUE(layer->parameters().empty());
    }
  }
}

TEST(Pooling, GlobalPoolingAndFlatten) {
  auto x = torch::randn({2, 3, 4, 5});
  auto gap = make_layer(spec_of("GlobalAveragePooling2D"), {3, 4, 5}, 2);
  auto gmp = make_layer(spec_of("GlobalMaxPooling2D"), {3, 4, 5}, 2);
  auto flat = make_layer(spec_of("Flatten"), {3, 4, 5}, 2);
  EXPECT_TRUE(torch::allclose(gap->forward(x), x.mean({2, 3})));
  EXPECT_TRUE(torch::equal(gmp->forward(x), std::get<0>(x.reshape({2, 3, 20}).max(2))));
  EXPECT_EQ(gap->forward(x).sizes().vec(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(infer_output_shape(*gmp, {3, 4, 5}), (std::vector<int64_t>{3}));
  EXPECT_TRUE(torch::equal(flat->forward(x), x.reshape({2, 60})));
  EXPECT_EQ(infer_output_shape(*flat, {3, 4, 5}), (std::vector<int64_t>{60}));
}

// --- Dense, Dropout, BatchNormalization ------------------------------------

TEST(Dense, AffineMapWithActivationAndOutputUnits) {
  auto dense = make_layer(spec_of("Dense", {{"units", 4}, {"activation", "sigmoid"}}), {6}, 2);
  EXPECT_EQ(param(dense, "weight").sizes().vec(), (std::vector<int64_t>{4, 6}));
  {
    torch::NoGradGuard no_grad;
    param(dense, "bias").copy_(torch::tensor({0.5f, -0.5f, 1.0f, 0.0f}));
  }
  auto x = torch::randn({3, 6});
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = dense->forward(x);
  }
  auto expected = torch::sigmoid(x.matmul(param(dense, "weight").detach().t()) + param(dense, "bias").detach());
  EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-6));

  // No units: one per class (the output layer).
  auto out = make_layer(spec_of("Dense"), {6}, 7);
  EXPECT_EQ(infer_output_shape(*out, {6}), (std::vector<int64_t>{7}));
  auto as_dense = std::dynamic_pointer_cast<DenseImpl>(out);
  ASSERT_TRUE(as_dense);
  EXPECT_EQ(as_dense->units(), 7);
  // Without bias.
  auto nobias = make_layer(spec_of("Dense", {{"units", 2}, {"use_bias", false}}), {6}, 2);
  EXPECT_FALSE(param(nobias, "bias").defined());
  EXPECT_TRUE(torch::allclose(nobias->forward(x), x.matmul(param(nobias, "weight").t())));
}

TEST(Dense, EmitLogitsDropsTheActivation) {
  auto layer = make_layer(spec_of("Dense", {{"units", 3}, {"activation", "softmax"}}), {4}, 3);
  auto dense = std::dynamic_pointer_cast<DenseImpl>(layer);
  ASSERT_TRUE(dense);
  auto x = torch::randn({5, 4});
  auto probs = dense->forward(x);
  EXPECT_TRUE(torch::allclose(probs.sum(1), torch::ones({5}), 1e-5, 1e-6));
  EXPECT_EQ(dense->activation(), ActivationKind::Softmax);
  dense->emit_logits();
  auto logits = dense->forward(x);
  EXPECT_TRUE(torch::allclose(torch::softmax(logits, 1), probs, 1e-5, 1e-6));
}

TEST(Dropout, DropsAndRescalesOnlyInTraining) {
  torch::manual_seed(2);
  auto layer = make_layer(spec_of("Dropout", {{"rate", 0.5}}), {1000}, 2);
  auto x = torch::ones({10, 1000});
  layer->eval();
  EXPECT_TRUE(torch::equal(layer->forward(x), x));
  layer->train();
  auto y = layer->forward(x);
  // Kept units are scaled by 1/(1-rate) so the expected sum is unchanged.
  auto kept = y.ne(0);
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), torch::full({kept.sum().item<int64_t>()}, 2.0f)));
  const double dropped = 1.0 - kept.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(dropped, 0.5, 0.03);
  // Different draws each call.
  EXPECT_FALSE(torch::equal(layer->forward(x), y));
  // Rate 0 in training is the identity.
  auto none = make_layer(spec_of("Dropout", {{"rate", 0.0}}), {10}, 2);
  none->train();
  EXPECT_TRUE(torch::equal(none->forward(torch::ones({2, 10})), torch::ones({2, 10})));
  EXPECT_TRUE(layer->parameters().empty());
}

TEST(BatchNormalization, BatchStatisticsInTrainingRunningStatisticsInInference) {
  torch::manual_seed(4);
  auto layer = make_layer(spec_of("BatchNormalization"), {3, 4, 4}, 2);
  // Keras: gamma/beta trainable, moving mean/variance counted as non-trainable.
  EXPECT_EQ(count_keras_params(*layer), (std::pair<int64_t, int64_t>{6, 6}));
  auto x = torch::randn({8, 3, 4, 4}) * 2 + 5;
  layer->train();
  auto y = layer->forward(x);
  auto mean = y.mean({0, 2, 3}), var = y.var({0, 2, 3}, /*unbiased=*/false);
  EXPECT_TRUE(torch::allclose(mean, torch::zeros({3}), 0, 1e-4));
  // Keras' default epsilon 1e-3: var_out = var / (var + eps).
  auto batch_var = x.var({0, 2, 3}, false);
  EXPECT_TRUE(torch::allclose(var, batch_var / (batch_var + 1e-3), 1e-4, 1e-4));

  auto buffers = layer->named_buffers();
  // Keras momentum 0.99: running = 0.99 * running + 0.01 * batch.
  EXPECT_TRUE(torch::allclose(buffers["running_mean"], 0.01 * x.mean({0, 2, 3}), 1e-5, 1e-5));
  EXPECT_EQ(buffers["num_batches_tracked"].item<int64_t>(), 1);

  // Inference uses (and keeps) the running statistics.
  auto rm = buffers["running_mean"].clone(), rv = buffers["running_var"].clone();
  layer->eval();
  auto z = layer->forward(x);
  auto expected = (x - rm.view({1, 3, 1, 1})) / torch::sqrt(rv.view({1, 3, 1, 1}) + 1e-3);
  EXPECT_TRUE(torch::allclose(z, expected, 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(buffers["running_mean"], rm));
  EXPECT_EQ(buffers["num_batches_tracked"].item<int64_t>(), 1);

  // Keras momentum 0.9 means 10% of the new batch; works on flat (B,F) input too.
  auto flat = make_layer(spec_of("BatchNormalization", {{"momentum", 0.9}, {"epsilon", 1e-5}}), {6}, 2);
  flat->train();
  auto f = torch::randn({16, 6}) + 2;
  auto g = flat->forward(f);
  EXPECT_TRUE(torch::allclose(flat->named_buffers()["running_mean"], 0.1 * f.mean(0), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(g.var(0, false), f.var(0, false) / (f.var(0, false) + 1e-5), 1e-4, 1e-4));
}

// --- ResidualBlock --------------------------------------------------------

// Inference-mode batch norm with the layer's own statistics (PyTorch's formula).
torch::Tensor nested_param(const Layer& layer, const std::string& name) {
  auto params = layer->named_parameters(/*recurse=*/true);
  auto* p = params.find(name);
  return p ? *p : torch::Tensor();
}

torch::Tensor reference_bn(const torch::Tensor& x, torch::nn::Module& bn, double eps) {
  auto p = bn.named_parameters();
  auto b = bn.named_buffers();
  const auto v = [](const torch::Tensor& t) { return t.view({1, -1, 1, 1}); };
  return (x - v(b["running_mean"])) / torch::sqrt(v(b["running_var"]) + eps) * v(p["weight"]) + v(p["bias"]);
}

void randomise_statistics(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters()) {
    if (item.value().dim() == 1) item.value().uniform_(-1, 1);
  }
  for (auto& item : module.named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos) item.value().uniform_(-0.5, 0.5);
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 2);
  }
}

TEST(ResidualBlock, TorchvisionNamesAndShapesWithAProjectionWhereTheShapeChanges) {
  auto down = make_layer(spec_of("ResidualBlock", {{"filters", 8}, {"strides", 2}}), {4, 9, 10}, 2);
  std::vector<std::string> names;
  for (const auto& item : down->named_parameters()) names.push_back(item.key());
  EXPECT_EQ(names, (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight",
                                             "bn2.bias", "downsample.0.weight", "downsample.1.weight",
                                             "downsample.1.bias"}));
  EXPECT_EQ(nested_param(down, "conv1.weight").sizes().vec(), (std::vector<int64_t>{8, 4, 3, 3}));
  EXPECT_EQ(nested_param(down, "downsample.0.weight").sizes().vec(), (std::vector<int64_t>{8, 4, 1, 1}));
  // TensorFlow's "same": ceil(n / stride).
  EXPECT_EQ(infer_output_shape(*down, {4, 9, 10}), (std::vector<int64_t>{8, 5, 5}));
  // zero_init_residual: the residual branch starts switched off.
  EXPECT_TRUE(torch::equal(nested_param(down, "bn2.weight"), torch::zeros({8})));
  EXPECT_TRUE(torch::equal(nested_param(down, "bn1.weight"), torch::ones({8})));

  // Same shape in and out: the shortcut is the input itself, no parameters.
  auto same = make_layer(spec_of("ResidualBlock", {{"filters", 4}}), {4, 6, 6}, 2);
  EXPECT_EQ(nested_param(same, "downsample.0.weight").defined(), false);
  EXPECT_EQ(same->named_parameters().size(), 6u);
  // Kept statistics: two batch norms of 4 channels, mean and variance each.
  EXPECT_EQ(count_keras_params(*same), (std::pair<int64_t, int64_t>{2 * 4 * 4 * 9 + 16, 16}));
  // At initialisation (zero-init, fresh statistics) the block is relu(x).
  same->eval();
  auto x = torch::randn({2, 4, 6, 6});
  EXPECT_TRUE(torch::allclose(same->forward(x), torch::relu(x)));
}

TEST(ResidualBlock, InferenceIsTheBasicBlockFormulaWithTensorFlowPadding) {
  torch::manual_seed(11);
  auto block = make_layer(spec_of("ResidualBlock", {{"filters", 5}, {"strides", 2}, {"zero_init_residual", false},
                                                    {"epsilon", 1e-3}}),
                          {3, 7, 8}, 2);
  randomise_statistics(*block);
  block->eval();
  auto x = torch::randn({1, 3, 7, 8});
  auto children = block->named_modules("", /*include_self=*/false);
  const auto w = [&](const std::string& name) { return nested_param(block, name + ".weight"); };
  torch::Tensor h = torch::relu(reference_bn(reference_conv(x, w("conv1"), {}, 2, 2, true), *children["bn1"], 1e-3));
  torch::Tensor y = reference_bn(reference_conv(h, w("conv2"), {}, 1, 1, true), *children["bn2"], 1e-3);
  torch::Tensor s = reference_bn(reference_conv(x, w("downsample.0"), {}, 2, 2, true), *children["downsample.1"], 1e-3);
  EXPECT_TRUE(torch::allclose(block->forward(x), torch::relu(y + s), 1e-4, 1e-5));
}

TEST(ResidualBlock, KernelsAreHeNormal) {
  torch::manual_seed(3);
  auto block = make_layer(spec_of("ResidualBlock", {{"filters", 64}}), {64, 8, 8}, 2);
  // He / Kaiming normal, fan_out mode: std = sqrt(2 / (64 * 3 * 3)).
  const double expected = std::sqrt(2.0 / (64 * 9));
  EXPECT_NEAR(nested_param(block, "conv2.weight").std().item<double>(), expected, 0.05 * expected);
  EXPECT_NEAR(nested_param(block, "conv1.weight").mean().item<double>(), 0.0, 0.05 * expected);
}

TEST(ResidualBlock, ErrorsNameTheLayer) {
  EXPECT_NE(build_error(spec_of("ResidualBlock")).find("layer 'layer_x' (ResidualBlock): `filters` is required"),
            std::string::npos);
  EXPECT_NE(build_error(spec_of("ResidualBlock", {{"filters", 0}})).find("`filters` must be positive"),
            std::string::npos);
  EXPECT_NE(build_error(spec_of("ResidualBlock", {{"filters", 4}}), {12}).find("needs an image-shaped input"),
            std::string::npos);
}

// --- activations ----------------------------------------------------------

TEST(Activations, NamesAndFormulas) {
  auto x = torch::linspace(-4, 4, 17).view({1, 17});
  EXPECT_TRUE(torch::equal(apply_activation(parse_activation("relu", "w"), x), x.clamp_min(0)));
  EXPECT_TRUE(torch::allclose(apply_activation(parse_activation("sigmoid", "w"), x), 1 / (1 + torch::exp(-x))));
  EXPECT_TRUE(torch::allclose(apply_activation(parse_activation("tanh", "w"), x), torch::tanh(x)));
  EXPECT_TRUE(torch::allclose(apply_activation(parse_activation("swish", "w"), x), x / (1 + torch::exp(-x))));
  EXPECT_EQ(parse_activation("silu", "w"), ActivationKind::Swish);
  EXPECT_TRUE(torch::allclose(apply_activation(parse_activation("gelu", "w"), x),
                              0.5 * x * (1 + torch::erf(x / std::sqrt(2.0))), 1e-5, 1e-6));
  for (const char* identity : {"none", "linear", ""}) {
    EXPECT_EQ(parse_activation(identity, "w"), ActivationKind::None) << identity;
  }
  EXPECT_TRUE(torch::equal(apply_activation(ActivationKind::None, x), x));
  // Softmax over the features of (B,F), over the channels of (B,C,H,W).
  auto flat = apply_activation(ActivationKind::Softmax, torch::randn({4, 5}));
  EXPECT_TRUE(torch::allclose(flat.sum(1), torch::ones({4})));
  auto image = apply_activation(ActivationKind::Softmax, torch::randn({2, 3, 4, 4}));
  EXPECT_TRUE(torch::allclose(image.sum(1), torch::ones({2, 4, 4})));
  for (auto kind : {ActivationKind::None, ActivationKind::ReLU, ActivationKind::Sigmoid, ActivationKind::Softmax,
                    ActivationKind::Tanh, ActivationKind::GELU, ActivationKind::Swish}) {
    EXPECT_EQ(parse_activation(activation_name(kind), "w"), kind);
  }
  try {
    parse_activation("leaky_relu", "layer 'd' (Dense)");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'd' (Dense): unknown activation 'leaky_relu'"), std::string::npos);
    EXPECT_NE(e.hint().find("relu"), std::string::npos);
  }
  // The Activation layer.
  auto layer = make_layer(spec_of("Activation", {{"activation", "relu"}}), {3, 2, 2}, 2);
  auto y = torch::randn({2, 3, 2, 2});
  EXPECT_TRUE(torch::equal(layer->forward(y), torch::relu(y)));
}

// --- mistakes -------------------------------------------------------------

TEST(LayerErrors, BadValuesNameTheLayerAndTheKey) {
  struct Case {
    std::string what;
    LayerSpec spec;
    std::vector<int64_t> input;
    std::string expected;
  };
  const std::vector<int64_t> image = {3, 8, 8}, flat = {16};
  const std::vector<Case> cases = {
      {"conv padding", spec_of("Conv2D", {{"filters", 4}, {"padding", "full"}}), image, "padding"},
      {"conv filters missing", spec_of("Conv2D", {{"kernel_size", 3}}), image, "`filters` is required"},
      {"conv filters zero", spec_of("Conv2D", {{"filters", 0}}), image, "`filters` must be positive"},
      {"conv filters text", spec_of("Conv2D", {{"filters", "8"}}), image, "`filters` must be an integer"},
      {"conv kernel zero", spec_of("Conv2D", {{"filters", 4}, {"kernel_size", 0}}), image, "`kernel_size`"},
      {"conv kernel triple", spec_of("Conv2D", {{"filters", 4}, {"kernel_size", {3, 3, 3}}}), image, "`kernel_size`"},
      {"conv strides zero", spec_of("Conv2D", {{"filters", 4}, {"strides", {1, 0}}}), image, "`strides`"},
      {"conv activation", spec_of("Conv2D", {{"filters", 4}, {"activation", "leaky"}}), image, "unknown activation"},
      {"conv on flat input", spec_of("Conv2D", {{"filters", 4}}), flat, "image-shaped input"},
      {"conv kernel too big", spec_of("Conv2D", {{"filters", 4}, {"kernel_size", 9}}), image, "too small"},
      {"pool size zero", spec_of("MaxPooling2D", {{"pool_size", 0}}), image, "`pool_size`"},
      {"pool padding", spec_of("AveragePooling2D", {{"padding", "causal"}}), image, "padding"},
      {"dense units zero", spec_of("Dense", {{"units", 0}}), flat, "`units` must be positive"},
      {"dense on image", spec_of("Dense", {{"units", 3}}), image, "needs a flat input"},
      {"dense use_bias text", spec_of("Dense", {{"units", 3}, {"use_bias", "no"}}), flat, "`use_bias`"},
      {"dropout missing rate", spec_of("Dropout"), flat, "`rate` is required"},
      {"dropout rate one", spec_of("Dropout", {{"rate", 1.0}}), flat, "`rate` must be in [0, 1)"},
      {"dropout rate negative", spec_of("Dropout", {{"rate", -0.1}}), flat, "`rate` must be in [0, 1)"},
      {"bn momentum", spec_of("BatchNormalization", {{"momentum", 1.5}}), image, "`momentum`"},
      {"rescaling without scale", spec_of("Rescaling", {{"offset", 1.0}}), image, "`scale` is required"},
      {"normalization two means", spec_of("Normalization", {{"mean", {0.5, 0.5}}, {"std", {1, 1, 1}}}), image,
       "`mean` must be three numbers"},
      {"normalization zero std", spec_of("Normalization", {{"mean", {0, 0, 0}}, {"std", {1, 0, 1}}}), image,
       "`std` values must be positive"},
      {"normalization on one channel", spec_of("Normalization", {{"mean", {0, 0, 0}}, {"std", {1, 1, 1}}}),
       {1, 8, 8}, "3-channel"},
      {"activation missing", spec_of("Activation"), image, "`activation` is required"},
      {"flip mode", spec_of("RandomFlip", {{"mode", "diagonal"}}), image, "unknown mode 'diagonal'"},
      {"rotation without factor", spec_of("RandomRotation"), image, "`factor` is required"},
      {"rotation range reversed", spec_of("RandomRotation", {{"factor", {0.2, -0.2}}}), image, "lo > hi"},
      {"rotation factor text", spec_of("RandomRotation", {{"factor", "0.1"}}), image, "`factor` must be a number"},
      {"rotation fill mode", spec_of("RandomRotation", {{"factor", 0.1}, {"fill_mode", "wrap"}}), image,
       "fill_mode 'wrap'"},
      {"zoom -1", spec_of("RandomZoom", {{"height_factor", {-1.0, 0.0}}}), image, "greater than -1"},
      {"contrast factor", spec_of("RandomContrast", {{"factor", 1.5}}), image, "`factor`"},
  };
  for (const auto& c : cases) {
    const std::string msg = build_error(c.spec, c.input);
    EXPECT_EQ(msg.find("<other exception>"), std::string::npos) << c.what << ": " << msg;
    EXPECT_NE(msg.find(c.expected), std::string::npos) << c.what << ": got '" << msg << "'";
    // The layer is named, except for the shape check, which names the layer type.
    if (c.expected != "too small") {
      EXPECT_NE(msg.find("layer_x"), std::string::npos) << c.what << ": got '" << msg << "'";
    } else {
      EXPECT_NE(msg.find("Conv2D"), std::string::npos) << c.what << ": got '" << msg << "'";
    }
  }
}

}  // namespace
}  // namespace tabby::nn
