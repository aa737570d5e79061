// Mixed precision: choosing the compute type, autocast scopes, and the dynamic
// loss scaler used with fp16 (CUDA). The CPU runs bf16 autocast for real; the
// loss scaler's arithmetic is checked on fp32 tensors, where scaling by a power
// of two is exact, so a scaled run must equal an unscaled one bit for bit.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "support/image_encode.h"
#include "tabby/image/image.h"
#include "tabby/inference/precision.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;

TEST(Precision, AutoIsFp32OnTheCpuAndFp16NeedsCuda) {
  const torch::Device cpu(torch::kCPU);
  EXPECT_EQ(resolve_precision(PrecisionChoice::automatic, cpu), Precision::fp32);
  EXPECT_EQ(resolve_precision(PrecisionChoice::fp32, cpu), Precision::fp32);
  EXPECT_EQ(resolve_precision(PrecisionChoice::bf16, cpu), Precision::bf16);
  EXPECT_THROW(resolve_precision(PrecisionChoice::fp16, cpu), UsageError);
  EXPECT_EQ(resolve_precision(PrecisionChoice::automatic, torch::Device(torch::kCUDA, 0)), Precision::bf16);
  EXPECT_EQ(resolve_precision(PrecisionChoice::fp16, torch::Device(torch::kCUDA, 0)), Precision::fp16);
}

TEST(Precision, Bf16ScopeCastsMatmulsAndRestoresOnLeaving) {
  const torch::Device cpu(torch::kCPU);
  auto a = torch::randn({4, 8});
  auto b = torch::randn({8, 3});
  {
    AutocastScope outer(Precision::bf16, cpu);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    {
      AutocastScope inner(Precision::bf16, cpu);
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16) << "leaving the inner scope ended the outer one";
    auto image = torch::randn({1, 3, 8, 8});
    auto kernel = torch::randn({4, 3, 3, 3});
    EXPECT_EQ(torch::conv2d(image, kernel).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
  {
    AutocastScope none(Precision::fp32, cpu);
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
  }
}

TEST(LossScaler, DisabledChangesNothing) {
  LossScaler s(false);
  auto loss = torch::tensor(0.5f);
  EXPECT_TRUE(torch::equal(s.scale_loss(loss), loss));
  auto p = torch::ones({2}, torch::requires_grad());
  p.mutable_grad() = torch::full({2}, std::numeric_limits<float>::infinity());
  EXPECT_TRUE(s.unscale_and_check({p})) << "disabled, the scaler never skips (the loss check does its job)";
  s.update(false);
  EXPECT_EQ(s.scale(), 1.0);
  EXPECT_EQ(s.skipped_steps(), 0);
}

TEST(LossScaler, SkipsInfiniteStepsHalvesAndGrowsAfterTheInterval) {
  LossScalerOptions o;
  o.init_scale = 1024;
  o.growth_interval = 3;
  LossScaler s(true, o);
  EXPECT_EQ(s.scale_loss(torch::tensor(2.0f)).item<float>(), 2048.0f);

  auto p = torch::zeros({3}, torch::requires_grad());
  p.mutable_grad() = torch::tensor({1024.0f, -2048.0f, 512.0f});
  ASSERT_TRUE(s.unscale_and_check({p}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor({1.0f, -2.0f, 0.5f})));

  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::quiet_NaN(), 0.0f});
  EXPECT_FALSE(s.unscale_and_check({p}));
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.skipped_steps(), 1);

  for (int i = 0; i < 2; ++i) s.update(true);
  EXPECT_EQ(s.scale(), 512.0);
  s.update(true);
  EXPECT_EQ(s.scale(), 1024.0) << "three good steps in a row double the scale";

  // What a checkpoint keeps, a resumed run gets back.
  LossScaler resumed(true, o);
  resumed.restore(s.state());
  EXPECT_EQ(resumed.scale(), s.scale());
  EXPECT_EQ(resumed.skipped_steps(), 1);
  s.update(true);
  resumed.update(true);
  EXPECT_EQ(resumed.state(), s.state());
}

// The scaled training loop (scale loss, backward, unscale, check, step) on a
// small regression: a power-of-two scale is exact in fp32, so the weights equal
// those of the plain loop; a poisoned step is skipped and leaves them as they were.
TEST(LossScaler, ScaledTrainingEqualsPlainTrainingAndSkipsPoisonedSteps) {
  auto train = [](bool scaled, int poisoned_step) {
    torch::manual_seed(3);
    torch::nn::Linear model(5, 2);
    torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-2));
    LossScalerOptions o;
    o.init_scale = 4096;
    LossScaler scaler(scaled, o);
    auto x = torch::randn({16, 5});
    auto y = torch::randn({16, 2});
    for (int step = 0; step < 6; ++step) {
      adam.zero_grad();
      auto loss = torch::mse_loss(model(x), y);
      scaler.scale_loss(loss).backward();
      if (step == poisoned_step) model->weight.mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
      const bool finite = scaler.unscale_and_check(model->parameters());
      if (finite) adam.step();
      scaler.update(finite);
    }
    return std::make_pair(model->weight.detach().clone(), scaler.skipped_steps());
  };
  const auto plain = train(false, -1);
  const auto scaled = train(true, -1);
  EXPECT_TRUE(torch::equal(plain.first, scaled.first));
  EXPECT_EQ(scaled.second, 0);

  const auto poisoned = train(true, 5);  // the last step: everything before it is as in the clean run
  EXPECT_EQ(poisoned.second, 1);
  const auto five_steps = [&] {
    torch::manual_seed(3);
    torch::nn::Linear model(5, 2);
    torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-2));
    auto x = torch::randn({16, 5});
    auto y = torch::randn({16, 2});
    for (int step = 0; step < 5; ++step) {
      adam.zero_grad();
      torch::mse_loss(model(x), y).backward();
      adam.step();
    }
    return model->weight.detach().clone();
  }();
  EXPECT_TRUE(torch::equal(poisoned.first, five_steps)) << "the poisoned step changed the weights";
}

// Through the binary: bf16 trains on the CPU, fp16 there is a clear usage error.
TEST(PrecisionCli, Bf16TrainsOnTheCpuAndFp16IsRefused) {
  const fs::path dir = testing::scratch_dir("precision_cli");
  for (const std::string cls : {"dark", "light"}) {
    for (int i = 0; i < 6; ++i) {
      Image image(12, 12);
      for (auto& v : image.pixels) v = static_cast<uint8_t>(cls == "dark" ? 20 + i : 200 - i);
      testing::write_bytes(dir / "data" / cls / (std::to_string(i) + ".png"), encode_png(image));
    }
  }
  auto args = [&](const std::string& precision, const std::string& out) {
    return std::vector<std::string>{"train", "--data", (dir / "data").string(), "--model", "tutorial-cnn",
                                    "--image-size", "32", "--epochs", "2", "--batch-size", "4", "--device", "cpu",
                                    "--threads", "1", "--no-report", "--overwrite", "--precision", precision,
                                    "--out", (dir / out).string()};
  };
  testing::CommandResult r = testing::run_tabby(args("bf16", "bf16"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("mixed precision: forward pass in bf16"), std::string::npos) << r.err;
  EXPECT_NE(read_file(dir / "bf16" / "run.json").find("\"precision\": \"bf16\""), std::string::npos);

  r = testing::run_tabby(args("fp16", "fp16"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--precision fp16 needs a CUDA device"), std::string::npos) << r.err;

  r = testing::run_tabby(args("fp8", "fp8"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("fp8"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tabby
