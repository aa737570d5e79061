// A Network built from a ModelSpec: the output head (binary = one sigmoid
// unit + binary cross-entropy; softmax head + cross-entropy, both on logits),
// per-backbone preprocessing as part of the model (ImageNet mean/std or
// [-1, 1]) and kept through model.toml, freezing and what can be cached, the
// weight names, and build errors that name the config file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "tabby/config/model_spec.h"
#include "tabby/nn/network.h"
#include "tabby/train/criterion.h"
#include "tabby/util/error.h"

namespace tabby::nn {
namespace {

ModelSpec spec_from(const std::string& toml, const std::string& source = "net.toml") {
  return parse_model_toml(toml, source);
}

const char* kSmallCnn = R"toml(
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
activation = "relu"
[[layers]]
type = "BatchNormalization"
[[layers]]
type = "MaxPooling2D"
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
units = 5
activation = "relu"
[[layers]]
type = "Dense"
activation = "softmax"
)toml";

// The message of the tabby::Error building a network throws ("" if none).
std::string build_error(const std::string& toml, int64_t classes, int64_t size = 16) {
  try {
    Network net(spec_from(toml, "bad.toml"), classes, size, size);
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<other exception> ") + e.what();
  }
  return "";
}

TEST(Network, BinaryModeIsOneSigmoidUnitWithBinaryCrossEntropy) {
  torch::manual_seed(1);
  Network net(spec_from("[[layers]]\ntype = \"Flatten\"\n[[layers]]\ntype = \"Dense\"\nunits = 1\n"
                        "activation = \"sigmoid\"\n"),
              2, 8, 8);
  EXPECT_TRUE(net->output().binary());
  EXPECT_EQ(net->output().activation, ActivationKind::Sigmoid);
  net->eval();
  auto x = torch::rand({6, 3, 8, 8}) * 10;
  auto logits = net->forward(x);
  ASSERT_EQ(logits.sizes().vec(), (std::vector<int64_t>{6, 1}));
  // forward gives logits: the sigmoid is not applied there.
  auto named = net->named_state();
  auto expected = x.flatten(1).matmul(named.at("dense.weight").t()) + named.at("dense.bias");
  EXPECT_TRUE(torch::allclose(logits, expected, 1e-4, 1e-4));
  EXPECT_GT(logits.abs().max().item<float>(), 1.0f);  // not squashed into (0, 1)

  // One probability per class: (1 - p, p).
  auto p = torch::sigmoid(logits.view({-1}));
  auto probs = net->probabilities(logits);
  ASSERT_EQ(probs.sizes().vec(), (std::vector<int64_t>{6, 2}));
  EXPECT_TRUE(torch::allclose(probs.select(1, 1), p));
  EXPECT_TRUE(torch::allclose(probs.select(1, 0), 1 - p));

  // Binary cross-entropy, computed here from its definition (in float64, so
  // log(1 - sigmoid) stays finite for these logits).
  auto labels = torch::tensor({0, 1, 1, 0, 1, 0}, torch::kLong);
  auto y = labels.to(torch::kFloat64);
  auto z = logits.view({-1}).to(torch::kFloat64);
  auto bce = -(y * torch::log(torch::sigmoid(z)) + (1 - y) * torch::log(1 - torch::sigmoid(z)));
  ASSERT_TRUE(torch::isfinite(bce).all().item<bool>()) << z;
  EXPECT_TRUE(torch::allclose(tabby::criterion_for(*net).per_sample(logits, labels).to(torch::kFloat64), bce, 1e-4, 1e-5));
  EXPECT_NEAR(tabby::criterion_for(*net).mean(logits, {labels}).item<double>(), bce.mean().item<double>(), 1e-4);
  EXPECT_TRUE(torch::equal(net->predicted_classes(logits), (p > 0.5).to(torch::kLong)));
}

TEST(Network, SoftmaxHeadTrainsOnLogitsWithCrossEntropy) {
  torch::manual_seed(2);
  Network net(spec_from(kSmallCnn), 3, 12, 12);
  EXPECT_FALSE(net->output().binary());
  EXPECT_EQ(net->output().units, 3);
  EXPECT_EQ(net->output().activation, ActivationKind::Softmax);
  net->eval();
  auto x = torch::rand({5, 3, 12, 12}) * 255;
  auto logits = net->forward(x);
  ASSERT_EQ(logits.sizes().vec(), (std::vector<int64_t>{5, 3}));
  auto probs = net->probabilities(logits);
  EXPECT_TRUE(torch::allclose(probs, torch::softmax(logits, 1), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(probs.sum(1), torch::ones({5}), 1e-5, 1e-6));

  // Sparse categorical cross-entropy: -log softmax at the label.
  auto labels = torch::tensor({0, 2, 1, 2, 0}, torch::kLong);
  auto log_probs = torch::log_softmax(logits.to(torch::kFloat64), 1);
  auto ce = -log_probs.gather(1, labels.view({-1, 1})).view({-1});
  EXPECT_TRUE(torch::allclose(tabby::criterion_for(*net).per_sample(logits, labels).to(torch::kFloat64), ce, 1e-5, 1e-6));
  EXPECT_NEAR(tabby::criterion_for(*net).mean(logits, {labels}).item<double>(), ce.mean().item<double>(), 1e-5);
  EXPECT_TRUE(torch::equal(net->predicted_classes(logits), logits.argmax(1)));

  // A head that declares no activation is read as logits too.
  Network plain(spec_from("[[layers]]\ntype = \"GlobalAveragePooling2D\"\n[[layers]]\ntype = \"Dense\"\n"), 4, 8, 8);
  EXPECT_EQ(plain->output().activation, ActivationKind::None);
  auto l = plain->forward(torch::rand({2, 3, 8, 8}));
  EXPECT_TRUE(torch::allclose(plain->probabilities(l), torch::softmax(l, 1)));
}

TEST(Network, HeadMistakesAreClearErrors) {
  const std::string flat = "[[layers]]\ntype = \"Flatten\"\n";
  EXPECT_NE(build_error(flat + "[[layers]]\ntype = \"Dense\"\nunits = 1\nactivation = \"sigmoid\"\n", 3)
                .find("1 unit (binary) but the data has 3 classes"),
            std::string::npos);
  EXPECT_NE(build_error(flat + "[[layers]]\ntype = \"Dense\"\nunits = 1\nactivation = \"softmax\"\n", 2)
                .find("one-unit output with softmax"),
            std::string::npos);
  EXPECT_NE(build_error(flat + "[[layers]]\ntype = \"Dense\"\nunits = 3\n", 2).find("3 units but the data has 2"),
            std::string::npos);
  EXPECT_NE(build_error(flat + "[[layers]]\ntype = \"Dense\"\nactivation = \"relu\"\n", 2).find("relu"),
            std::string::npos);
  EXPECT_NE(build_error("[[layers]]\ntype = \"Conv2D\"\nfilters = 2\n", 2).find("not one score per class"),
            std::string::npos);
  EXPECT_NE(build_error(flat + "[[layers]]\ntype = \"Dense\"\n", 0).find("at least one class"), std::string::npos);
  try {
    Network tiny(spec_from(flat + "[[layers]]\ntype = \"Dense\"\n"), 2, 4, 4);
    FAIL() << "a 4x4 input was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("4x4"), std::string::npos);
  }
}

TEST(Network, BadLayerValuesNameTheConfigFile) {
  const std::string tail = "[[layers]]\ntype = \"Flatten\"\n[[layers]]\ntype = \"Dense\"\n";
  struct Case {
    std::string layer, expected;
  };
  const std::vector<Case> cases = {
      {"type = \"Conv2D\"\nfilters = \"8\"\n", "`filters` must be an integer"},
      {"type = \"Conv2D\"\nfilters = 8\npadding = \"full\"\n", "padding"},
      {"type = \"Conv2D\"\nfilters = 8\nactivation = \"leaky\"\n", "unknown activation 'leaky'"},
      {"type = \"Dropout\"\nrate = 1.5\n", "`rate` must be in [0, 1)"},
      {"type = \"RandomRotation\"\nfactor = 0.1\nfill_mode = \"wrap\"\n", "fill_mode 'wrap'"},
      {"type = \"Conv2D\"\nfilters = 8\nkernel_size = 40\n", "too small"},
  };
  for (const auto& c : cases) {
    const std::string msg = build_error("[[layers]]\n" + c.layer + tail, 2);
    EXPECT_EQ(msg.find("<other exception>"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.toml"), std::string::npos) << "got '" << msg << "'";
    EXPECT_NE(msg.find(c.expected), std::string::npos) << "got '" << msg << "'";
  }
}

// --- preprocessing per backbone ---------------------------------------------

TEST(NetworkPreprocessing, ImageNetWeightsGetMeanStdOthersMinusOneToOne) {
  auto x = torch::rand({2, 3, 32, 32}) * 255;
  x[0][0][0][0] = 0.0f;
  x[0][0][0][1] = 255.0f;

  // torchvision weights expect ImageNet mean/std on [0, 1] pixels.
  Network imagenet(spec_from("backbone = \"mobilenet_v2\"\n"), 2, 32, 32);
  ASSERT_EQ(imagenet->entries().front().type, "Normalization");
  auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({1, 3, 1, 1});
  auto std = torch::tensor({0.229f, 0.224f, 0.225f}).view({1, 3, 1, 1});
  EXPECT_TRUE(torch::allclose(imagenet->forward_range(x, 0, 1), (x / 255 - mean) / std, 1e-5, 1e-5));

  // Keras-style [-1, 1] scaling when the backbone starts from scratch or when asked.
  for (const std::string toml : {"backbone = \"mobilenet_v2\"\nweights = \"none\"\n",
                                 "backbone = \"mobilenet_v2\"\npreprocessing = \"tf\"\n"}) {
    SCOPED_TRACE(toml);
    Network tf(spec_from(toml), 2, 32, 32);
    ASSERT_EQ(tf->entries().front().type, "Rescaling");
    auto y = tf->forward_range(x, 0, 1);
    EXPECT_TRUE(torch::allclose(y, x / 127.5 - 1, 1e-5, 1e-5));
    EXPECT_NEAR(y.min().item<float>(), -1.0f, 1e-6);
    EXPECT_NEAR(y.max().item<float>(), 1.0f, 1e-6);
  }
}

TEST(NetworkPreprocessing, RecordedInModelTomlSoARunAppliesTheSame) {
  for (const std::string toml : {"backbone = \"resnet18\"\n", "backbone = \"resnet18\"\nweights = \"none\"\n"}) {
    SCOPED_TRACE(toml);
    ModelSpec spec = spec_from(toml);
    // What a run folder stores and later reads back.
    ModelSpec reread = parse_model_toml(model_to_toml(spec), "run/model.toml");
    ASSERT_EQ(reread.layers.front().type, spec.layers.front().type);
    EXPECT_EQ(reread.layers.front().params, spec.layers.front().params);
    Network a(spec, 2, 32, 32), b(reread, 2, 32, 32);
    auto x = torch::rand({1, 3, 32, 32}) * 255;
    EXPECT_TRUE(torch::equal(a->forward_range(x, 0, 1), b->forward_range(x, 0, 1)));
  }
}

// --- freezing, caching, weights --------------------------------------------

TEST(Network, FrozenBackboneCountsAndTheCacheablePrefix) {
  Network frozen(spec_from("backbone = \"squeezenet1_1\"\nweights = \"none\"\nfreeze_backbone = true\n"), 2, 64, 64);
  ASSERT_TRUE(frozen->backbone_index().has_value());
  EXPECT_EQ(*frozen->backbone_index(), 1u);
  EXPECT_EQ(frozen->backbone()->count_parameters(/*trainable_only=*/true), 0);
  // Only the head trains: Dense 512 -> 2.
  EXPECT_EQ(frozen->count_trainable(), 512 * 2 + 2);
  EXPECT_EQ(frozen->count_non_trainable(), frozen->backbone()->count_parameters(false));
  // Preprocessing + frozen backbone + the global pooling after it are a fixed
  // function of the image; the Dropout and Dense of the head are not.
  EXPECT_EQ(frozen->cacheable_prefix(), 3u);
  EXPECT_LT(frozen->cacheable_prefix(), frozen->size());
  {
    torch::NoGradGuard no_grad;
    frozen->eval();
    auto x = torch::rand({2, 3, 64, 64}) * 255;
    const size_t prefix = frozen->cacheable_prefix();
    auto cached = frozen->forward_range(x, 0, prefix);
    EXPECT_EQ(cached.dim(), 2) << "the cache holds pooled features";
    EXPECT_TRUE(torch::allclose(frozen->forward_range(cached, prefix, frozen->size()),
                                frozen->forward_range(x, 0, frozen->size())));
  }

  // Augmentation before the backbone, a trainable backbone, or the backbone's
  // own top: nothing can be cached.
  Network augmented(spec_from("backbone = \"squeezenet1_1\"\nweights = \"none\"\nfreeze_backbone = true\n"
                              "[[augment]]\ntype = \"RandomFlip\"\nmode = \"horizontal\"\n"),
                    2, 64, 64);
  EXPECT_EQ(augmented->cacheable_prefix(), 0u);
  Network open(spec_from("backbone = \"squeezenet1_1\"\nweights = \"none\"\n"), 2, 64, 64);
  EXPECT_EQ(open->cacheable_prefix(), 0u);
  EXPECT_GT(open->count_trainable(), frozen->count_trainable());
  Network plain(spec_from(kSmallCnn), 2, 12, 12);
  EXPECT_EQ(plain->cacheable_prefix(), 0u);
  EXPECT_FALSE(plain->backbone());
  EXPECT_THROW(plain->set_backbone_trainable_blocks(1, true), UsageError);
}

TEST(Network, ParameterCountsAndWeightNames) {
  Network net(spec_from(kSmallCnn), 3, 12, 12);
  // conv 4*3*3*3+4 = 112; BN 4+4 trainable, 4+4 running statistics (non-trainable, as Keras counts);
  // 12 -> conv 10 -> pool 5, flatten 4*5*5 = 100; dense 100*5+5 = 505; output 5*3+3 = 18.
  EXPECT_EQ(net->count_trainable(), 112 + 8 + 505 + 18);
  EXPECT_EQ(net->count_non_trainable(), 8);
  auto state = net->named_state();
  for (const char* key : {"conv2d.weight", "conv2d.bias", "batch_normalization.weight", "batch_normalization.bias",
                          "batch_normalization.running_mean", "batch_normalization.running_var",
                          "batch_normalization.num_batches_tracked", "dense.weight", "dense.bias", "dense_1.weight",
                          "dense_1.bias"}) {
    EXPECT_EQ(state.count(key), 1u) << key;
  }
  EXPECT_EQ(state.size(), 11u);
  EXPECT_EQ(state.at("dense.weight").sizes().vec(), (std::vector<int64_t>{5, 100}));
}

TEST(Network, WeightsLoadIntoAFreshNetworkAndGiveTheSameOutputs) {
  torch::manual_seed(3);
  Network a(spec_from(kSmallCnn), 3, 12, 12);
  a->train();
  a->forward(torch::rand({4, 3, 12, 12}) * 255);  // move the BN statistics
  torch::manual_seed(4);
  Network b(spec_from(kSmallCnn), 3, 12, 12);
  a->eval();
  b->eval();
  auto x = torch::rand({2, 3, 12, 12}) * 255;
  EXPECT_FALSE(torch::allclose(a->forward(x), b->forward(x)));
  TensorMap copy;
  for (const auto& [k, v] : a->named_state()) copy[k] = v.clone();
  LoadReport report = b->load_named_state(copy, /*strict=*/true);
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_EQ(report.loaded, copy.size());
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));

  // Strict loading of an incomplete state names what is missing and changes nothing.
  copy.erase("dense_1.bias");
  auto before = b->named_state().at("dense.weight").clone();
  copy["dense.weight"] = torch::zeros({5, 100});
  try {
    b->load_named_state(copy, true);
    FAIL() << "an incomplete state loaded strictly";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dense_1.bias"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(torch::equal(b->named_state().at("dense.weight"), before));
  // Non-strict loading reports instead.
  copy["extra.weight"] = torch::zeros({1});
  LoadReport loose = b->load_named_state(copy, false);
  EXPECT_EQ(loose.missing, (std::vector<std::string>{"dense_1.bias"}));
  EXPECT_EQ(loose.unexpected, (std::vector<std::string>{"extra.weight"}));
}

TEST(Network, ChannelsLastGivesTheSameResults) {
  torch::manual_seed(6);
  Network net(spec_from(kSmallCnn), 3, 12, 12);
  net->eval();
  auto x = torch::rand({3, 3, 12, 12}) * 255;
  auto reference = net->forward(x);
  net->set_channels_last(true);
  EXPECT_TRUE(net->channels_last());
  EXPECT_TRUE(torch::allclose(net->forward(x), reference, 1e-4, 1e-4));
}

}  // namespace
}  // namespace tabby::nn
