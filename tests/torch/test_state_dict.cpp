// State dicts: raw ↔ torch conversion, names as PyTorch writes them, and the
// load report (missing / unexpected / wrong shape) instead of a crash.
#include "tabby/nn/state_dict.h"
#include "tabby/util/error.h"
#include "tabby/weights/safetensors.h"
#include "support/module_state.h"
#include "support/test_support.h"

#include <torch/torch.h>

#include <cstring>

using namespace tabby;
using namespace tabby::nn;

namespace {

using tabby::testing::module_state_raw;

// A conv + batch norm + linear, registered under PyTorch-style names.
struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl()
      : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)))),
        bn(register_module("bn", torch::nn::BatchNorm2d(4))),
        fc(register_module("fc", torch::nn::Linear(4, 2))) {}
  torch::nn::Conv2d conv;
  torch::nn::BatchNorm2d bn;
  torch::nn::Linear fc;
};
TORCH_MODULE(TinyNet);

TensorMap random_state_for(const torch::nn::Module& module) {
  TensorMap state;
  for (const auto& [name, tensor] : module_state(module)) {
    state[name] = tensor.is_floating_point() ? torch::randn_like(tensor) : torch::full_like(tensor, 42);
  }
  return state;
}

// The module's state converted for writing with tabby/weights (write_safetensors).
bool contains(const std::vector<std::string>& list, const std::string& needle) {
  return std::find(list.begin(), list.end(), needle) != list.end();
}

}  // namespace

TEST(StateDict, RawRoundTripKeepsTypeShapeAndValues) {
  const std::vector<torch::Tensor> tensors = {
      torch::randn({2, 3, 4}),
      torch::randn({5}).to(torch::kFloat16),
      torch::randn({3, 2}).to(torch::kBFloat16),
      torch::randn({2, 2}).to(torch::kFloat64),
      torch::tensor(int64_t{123456789012}),  // a scalar, as num_batches_tracked
      torch::arange(6, torch::kInt32).reshape({2, 3}),
      torch::tensor({-3, 7}, torch::kInt8),
      torch::tensor({0, 200, 255}, torch::kUInt8),
      torch::tensor({true, false, true}),
      torch::empty({0, 3}),
  };
  for (const auto& t : tensors) {
    RawTensor raw = to_raw(t);
    EXPECT_EQ(raw.shape, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()));
    EXPECT_EQ(raw.data.size(), static_cast<size_t>(t.numel() * t.element_size()));
    torch::Tensor back = to_torch(raw);
    EXPECT_EQ(back.scalar_type(), t.scalar_type());
    EXPECT_EQ(back.sizes(), t.sizes());
    EXPECT_TRUE(torch::equal(back, t)) << t;
  }
}

TEST(StateDict, RawOfANonContiguousTensorIsInLogicalOrder) {
  torch::Tensor t = torch::arange(6, torch::kFloat32).reshape({2, 3}).t();  // (3,2), strided
  RawTensor raw = to_raw(t);
  ASSERT_EQ(raw.shape, (std::vector<int64_t>{3, 2}));
  float values[6];
  std::memcpy(values, raw.data.data(), sizeof(values));
  EXPECT_EQ(values[0], 0.f);
  EXPECT_EQ(values[1], 3.f);
  EXPECT_EQ(values[2], 1.f);
  EXPECT_TRUE(torch::equal(to_torch(raw), t));
}

TEST(StateDict, RawWithTheWrongByteCountIsAnError) {
  RawTensor raw;
  raw.dtype = DType::F32;
  raw.shape = {2, 2};
  raw.data = std::string(15, '\0');
  EXPECT_THROW(to_torch(raw), tabby::Error);
  RawTensorMap map{{"layer.weight", raw}};
  try {
    to_torch(map);
    FAIL() << "expected an error";
  } catch (const tabby::Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer.weight"), std::string::npos) << e.what();
  }
}

TEST(StateDict, ModuleStateUsesPyTorchNames) {
  TinyNet net;
  TensorMap state = module_state(*net);
  std::vector<std::string> names;
  for (const auto& entry : state) names.push_back(entry.first);
  const std::vector<std::string> expected = {
      "bn.bias", "bn.num_batches_tracked", "bn.running_mean", "bn.running_var", "bn.weight",
      "conv.bias", "conv.weight", "fc.bias", "fc.weight"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(state.at("bn.num_batches_tracked").scalar_type(), torch::kInt64);
  EXPECT_EQ(state.at("bn.num_batches_tracked").dim(), 0);
  EXPECT_TRUE(module_state(*net, "model.").count("model.conv.weight"));
}

TEST(StateDict, LoadCopiesEverythingWhenNamesAndShapesMatch) {
  TinyNet net;
  TensorMap state = random_state_for(*net);
  state["bn.running_var"] = state["bn.running_var"].abs().to(torch::kFloat64);  // converted on load
  LoadReport report = load_module_state(*net, state, /*strict=*/true);
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_EQ(report.loaded, state.size());
  for (const auto& [name, tensor] : module_state(*net)) {
    EXPECT_TRUE(torch::allclose(tensor.to(torch::kFloat64), state[name].to(torch::kFloat64))) << name;
  }
  EXPECT_EQ(net->bn->running_var.scalar_type(), torch::kFloat32);
  EXPECT_EQ(net->bn->num_batches_tracked.item<int64_t>(), 42);
  EXPECT_TRUE(net->conv->weight.requires_grad());  // loading does not change trainability
}

TEST(StateDict, MismatchesAreListedNotFatal) {
  TinyNet net;
  TensorMap state = random_state_for(*net);
  state.erase("fc.bias");
  state["fc.extra"] = torch::zeros({3});
  state["conv.weight"] = torch::zeros({4, 3, 5, 5});
  const torch::Tensor bn_weight_before = net->bn->weight.clone();

  LoadReport report = load_module_state(*net, state, /*strict=*/false);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.missing, std::vector<std::string>{"fc.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"fc.extra"});
  ASSERT_EQ(report.wrong_shape.size(), 1u);
  EXPECT_EQ(report.wrong_shape[0], "conv.weight: file [4, 3, 5, 5] vs model [4, 3, 3, 3]");
  // Non-strict: what matched was copied.
  EXPECT_TRUE(torch::equal(net->bn->weight, state["bn.weight"]));
  EXPECT_FALSE(torch::equal(net->bn->weight, bn_weight_before));

  const std::string text = report.describe();
  EXPECT_NE(text.find("1 missing (fc.bias)"), std::string::npos) << text;
  EXPECT_NE(text.find("1 unexpected (fc.extra)"), std::string::npos) << text;
  EXPECT_NE(text.find("1 wrong shape (conv.weight: file [4, 3, 5, 5] vs model [4, 3, 3, 3])"), std::string::npos)
      << text;
}

TEST(StateDict, StrictMismatchThrowsWithTheNamesAndCopiesNothing) {
  TinyNet net;
  TensorMap state = random_state_for(*net);
  state.erase("conv.bias");
  state["head.weight"] = torch::zeros({1});
  const torch::Tensor weight_before = net->conv->weight.clone();
  try {
    load_module_state(*net, state, /*strict=*/true);
    FAIL() << "expected an error";
  } catch (const tabby::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("conv.bias"), std::string::npos) << what;
    EXPECT_NE(what.find("head.weight"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_TRUE(torch::equal(net->conv->weight, weight_before));
}

TEST(StateDict, MissingBatchCounterIsAcceptedAsPyTorchDoes) {
  TinyNet net;
  TensorMap state = random_state_for(*net);
  state.erase("bn.num_batches_tracked");
  LoadReport report = load_module_state(*net, state, /*strict=*/true);
  EXPECT_TRUE(report.ok()) << report.describe();
  EXPECT_EQ(net->bn->num_batches_tracked.item<int64_t>(), 0);
}

TEST(StateDict, PrefixSelectsASubtreeAndIgnoresOtherKeys) {
  TinyNet net;
  TensorMap state;
  for (const auto& [name, tensor] : random_state_for(*net)) state["backbone." + name] = tensor;
  state["head.weight"] = torch::zeros({2});  // outside the prefix: not ours to judge
  state["backbone.stray"] = torch::zeros({2});
  LoadReport report = load_module_state(*net, state, /*strict=*/false, "backbone.");
  EXPECT_TRUE(report.missing.empty());
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"backbone.stray"});
  EXPECT_TRUE(torch::equal(net->fc->weight, state["backbone.fc.weight"]));
}

TEST(StateDict, DescribeShortensLongLists) {
  LoadReport report;
  for (int i = 0; i < 30; ++i) report.missing.push_back("m" + std::to_string(i));
  report.unexpected = {"u0", "u1"};
  const std::string text = report.describe(5);
  EXPECT_NE(text.find("30 missing (m0, m1, m2, m3, m4)"), std::string::npos) << text;
  EXPECT_NE(text.find("2 unexpected"), std::string::npos) << text;
  EXPECT_EQ(text.find("u0"), std::string::npos) << text;
  EXPECT_NE(text.find("and 27 more"), std::string::npos) << text;
}

TEST(StateDict, WrittenSafetensorsLoadBack) {
  TinyNet a, b;
  auto dir = tabby::testing::scratch_dir("state_dict_roundtrip");
  write_safetensors(dir / "tiny.safetensors", module_state_raw(*a));
  TensorMap state = to_torch(read_safetensors(dir / "tiny.safetensors").tensors);
  LoadReport report = load_module_state(*b, state, /*strict=*/true);
  EXPECT_TRUE(report.ok()) << report.describe();
  for (const auto& [name, tensor] : module_state(*a)) EXPECT_TRUE(torch::equal(module_state(*b).at(name), tensor));
}
