// The pieces of modern training recipes against PyTorch's own numbers where
// PyTorch has the same thing (label-smoothed and soft-target cross-entropy
// from LibTorch's kernels, learning-rate curves from torch.optim.lr_scheduler
// run by python3-torch), the rest against their definitions (mixup and cutmix
// targets, the weight average, discriminative groups); then through the real
// binary: every option on, stopped like a crash and resumed, ends with the
// uninterrupted run's weights; recipes and [train] keys are honoured or refused.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "support/training_data.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/train_options.h"
#include "tabby/nn/network.h"
#include "tabby/inference/tta.h"
#include "tabby/train/criterion.h"
#include "tabby/train/lr_finder.h"
#include "tabby/train/ema.h"
#include "tabby/train/mix.h"
#include "tabby/train/param_groups.h"
#include "tabby/train/schedule.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace F = torch::nn::functional;
namespace fs = std::filesystem;
using testing::CommandResult;
using testing::describe;
using testing::run_tabby;
using testing::scratch_dir;

TEST(Criterion, LabelSmoothingEqualsPyTorchsCrossEntropy) {
  torch::manual_seed(3);
  const auto logits = torch::randn({6, 4}, torch::kFloat64);
  const auto labels = torch::tensor({0, 3, 1, 2, 2, 0}, torch::kInt64);
  for (double e : {0.0, 0.1, 0.3}) {
    const Criterion c(false, 4, e);
    const double ours = c.mean(logits, {labels}).item<double>();
    const double torch_value =
        F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().label_smoothing(e)).item<double>();
    EXPECT_NEAR(ours, torch_value, 1e-12) << "smoothing " << e;
  }
}

TEST(Criterion, MixedTargetsEqualPyTorchsProbabilityTargets) {
  torch::manual_seed(4);
  const auto logits = torch::randn({5, 3}, torch::kFloat64);
  const auto a = torch::tensor({0, 1, 2, 1, 0}, torch::kInt64);
  const auto b = a.roll(1, 0);
  const double lambda = 0.7, e = 0.1;
  const Criterion c(false, 3, e);
  const double ours = c.mean(logits, {a, b, lambda}).item<double>();
  const auto q = F::one_hot(a, 3).to(torch::kFloat64) * lambda + F::one_hot(b, 3).to(torch::kFloat64) * (1 - lambda);
  const double torch_value =
      F::cross_entropy(logits, q, F::CrossEntropyFuncOptions().label_smoothing(e)).item<double>();
  EXPECT_NEAR(ours, torch_value, 1e-12);
}

TEST(Criterion, BinaryOutputSmoothsLikeKeras) {
  const auto logits = torch::tensor({{0.5}, {-1.0}, {2.0}}, torch::kFloat64);
  const auto labels = torch::tensor({1, 0, 1}, torch::kInt64);
  const double e = 0.2;
  const auto q = labels.to(torch::kFloat64) * (1 - e) + e / 2;
  const double expected = F::binary_cross_entropy_with_logits(logits.view({-1}), q).item<double>();
  EXPECT_NEAR(Criterion(true, 2, e).mean(logits, {labels}).item<double>(), expected, 1e-12);
  // Evaluation's loss stays the plain one.
  const auto plain = F::binary_cross_entropy_with_logits(logits.view({-1}), labels.to(torch::kFloat64),
                                                         F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  EXPECT_TRUE(torch::allclose(Criterion(true, 2, e).per_sample(logits, labels), plain));
}

// The curves PyTorch's schedulers draw (tests/python/reference_schedules.py).
nlohmann::json reference_curves(int64_t total, int64_t warmup, std::string* skip) {
  const fs::path script = fs::path(TABBY_SOURCE_DIR) / "tests/python/reference_schedules.py";
  const char* py = std::getenv("TABBY_PYTHON");
  const CommandResult r = testing::run_command(testing::shell_quote(py ? py : "/usr/bin/python3") + " " +
                                               testing::shell_quote(script.string()) + " " + std::to_string(total) +
                                               " " + std::to_string(warmup));
  if (r.exit_code == 3) {
    *skip = "torch not importable: " + r.err;
    return {};
  }
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  return nlohmann::json::parse(r.out);
}

TEST(Schedule, CurvesEqualPyTorchsSchedulers) {
  for (const auto& [total, warmup] : std::vector<std::pair<int64_t, int64_t>>{{40, 0}, {40, 7}, {13, 12}, {9, 2}}) {
    std::string skip;
    const nlohmann::json ref = reference_curves(total, warmup, &skip);
    if (!skip.empty()) GTEST_SKIP() << skip;
    for (Schedule kind : {Schedule::constant, Schedule::cosine, Schedule::one_cycle}) {
      const LrSchedule ours(kind, static_cast<double>(warmup), total);
      const auto& curve = ref.at(enum_name(kind));
      ASSERT_EQ(curve.size(), static_cast<size_t>(total));
      for (int64_t s = 0; s < total; ++s) {
        EXPECT_NEAR(ours.factor(s), curve[s].get<double>(), 1e-9)
            << enum_name(kind) << " total " << total << " warmup " << warmup << " step " << s;
      }
    }
  }
}

TEST(Schedule, APhaseCountsWarmupInEpochs) {
  TrainOptions o;
  o.schedule = Schedule::cosine;
  o.warmup_epochs = 0.5;
  const LrSchedule s = phase_schedule(o, 4, 10);  // 40 steps, 5 of warmup
  EXPECT_NEAR(s.factor(0), 0.01, 1e-12);
  EXPECT_NEAR(s.factor(5), 1.0, 1e-12);
  EXPECT_LT(s.factor(39), 0.01);
}

TEST(Mix, MixupBlendsNeighboursAndWeighsTheirLabels) {
  const auto x = torch::arange(2 * 3 * 2 * 2, torch::kFloat32).view({2, 3, 2, 2});
  const auto y = torch::tensor({0, 1}, torch::kInt64);
  const MixedBatch m = apply_mixup(x, y, 0.25);
  EXPECT_TRUE(torch::allclose(m.inputs[0], x[0] * 0.25 + x[1] * 0.75));
  EXPECT_TRUE(torch::allclose(m.inputs[1], x[1] * 0.25 + x[0] * 0.75));
  EXPECT_TRUE(torch::equal(m.targets.mixed_labels, torch::tensor({1, 0}, torch::kInt64)));
  EXPECT_DOUBLE_EQ(m.targets.weight, 0.25);
}

TEST(Mix, CutmixPastesTheBoxAndWeighsByTheUncoveredArea) {
  // torchvision's box: half sides r*H, r*W with r = sqrt(1 - lambda) / 2, clipped at the borders.
  const CutBox box = cutmix_box(0.75, 8, 10, 1, 9);
  EXPECT_EQ(box.y0, 0);
  EXPECT_EQ(box.y1, 3);  // 1 + int(0.25 * 8)
  EXPECT_EQ(box.x0, 7);  // 9 - int(0.25 * 10)
  EXPECT_EQ(box.x1, 10);
  const auto x = torch::stack({torch::zeros({3, 8, 10}), torch::ones({3, 8, 10})});
  const MixedBatch m = apply_cutmix(x, torch::tensor({0, 1}, torch::kInt64), box);
  const double uncovered = 1.0 - 9.0 / 80.0;
  EXPECT_DOUBLE_EQ(m.targets.weight, uncovered);
  EXPECT_NEAR(m.inputs[0].mean().item<double>(), 1.0 - uncovered, 1e-6);  // image 0 got image 1's box
  EXPECT_NEAR(m.inputs[1].mean().item<double>(), uncovered, 1e-6);
  EXPECT_EQ(m.inputs[0][0][0][9].item<float>(), 1.0f);
  EXPECT_EQ(m.inputs[0][0][5][5].item<float>(), 0.0f);
}

TEST(Mix, BetaDrawsHaveTheirMean) {
  torch::manual_seed(11);
  double sum = 0;
  for (int i = 0; i < 2000; ++i) {
    const double v = sample_beta(0.4);
    ASSERT_GE(v, 0.0);
    ASSERT_LE(v, 1.0);
    sum += v;
  }
  EXPECT_NEAR(sum / 2000, 0.5, 0.03);
}

ModelSpec tiny_spec() {
  return parse_model_toml(R"(name = "t"
[[layers]]
type = "Conv2D"
filters = 2
kernel_size = 3
[[layers]]
type = "BatchNormalization"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
units = 2
)",
                          "t.toml");
}

TEST(WeightAverage, FollowsTheDefinitionIncludingItsWarmup) {
  nn::Network net(tiny_spec(), 2, 8, 8);
  const auto name = net->named_state().begin()->first;
  const torch::Tensor start = net->named_state().at(name).clone();
  WeightAverage avg(*net, 0.9);
  torch::Tensor expected = start.clone();
  for (int n = 0; n < 30; ++n) {
    {
      torch::NoGradGuard g;
      for (auto& p : net->parameters()) p.add_(0.1);
    }
    const double d = std::min(0.9, (1.0 + n) / (10.0 + n));
    EXPECT_DOUBLE_EQ(avg.next_decay(), d);
    avg.update(*net);
    expected = expected * d + net->named_state().at(name) * (1 - d);
  }
  EXPECT_TRUE(torch::allclose(avg.weights().at(name), expected, 1e-5, 1e-6));
  EXPECT_EQ(avg.updates(), 30);
  // Swapping the average in and out leaves the network's own weights.
  const torch::Tensor own = net->named_state().at(name).clone();
  {
    SwappedWeights swap(*net, avg.weights());
    EXPECT_TRUE(torch::allclose(net->named_state().at(name), expected, 1e-5, 1e-6));
  }
  EXPECT_TRUE(torch::equal(net->named_state().at(name), own));
}

TEST(ParamGroups, HeadAtTheFullRateAndBlocksDecayingDownwards) {
  const ModelSpec spec = parse_model_toml(R"(name = "b"
backbone = "squeezenet1_1"
weights = "none"
pooling = "avg"
[[layers]]
type = "Dense"
)",
                                          "b.toml");
  nn::Network net(spec, 3, 64, 64);
  TrainOptions o;
  EXPECT_EQ(parameter_groups(*net, o).size(), 1u);
  o.backbone_lr_ratio = 0.1;
  o.layer_decay = 0.5;
  const auto groups = parameter_groups(*net, o);
  const auto blocks = net->backbone()->blocks();
  ASSERT_EQ(groups.size(), blocks.size() + 1);
  EXPECT_DOUBLE_EQ(groups[0].lr_ratio, 1.0);
  EXPECT_EQ(groups[0].params.size(), 2u);  // the Dense head's kernel and bias
  for (size_t k = 1; k < groups.size(); ++k) EXPECT_DOUBLE_EQ(groups[k].lr_ratio, 0.1 * std::pow(0.5, k - 1));
  size_t total = 0;
  std::set<const void*> seen;
  for (const auto& g : groups) {
    for (const auto& p : g.params) seen.insert(p.unsafeGetTensorImpl());
    total += g.params.size();
  }
  EXPECT_EQ(total, seen.size()) << "a parameter in two groups";
  EXPECT_EQ(total, net->parameters().size());
}

TEST(TrainOptionTable, EveryOptionRoundTripsThroughJsonAndHasOneFlag) {
  std::set<std::string> flags;
  for (const auto& d : train_option_defs()) {
    if (!d.flag.empty()) EXPECT_TRUE(flags.insert(d.flag).second) << d.flag << " twice";
    EXPECT_FALSE(d.help.empty()) << d.key;
  }
  TrainOptions o;
  o.schedule = Schedule::one_cycle;
  o.warmup_epochs = 1.5;
  o.label_smoothing = 0.1;
  o.mixup = 0.2;
  o.cutmix = 1.0;
  o.ema = 0.99;
  o.backbone_lr_ratio = 0.2;
  o.layer_decay = 0.7;
  o.augment = "flip";
  o.early_stopping.patience = 9;
  const TrainOptions back = train_options_from_json(to_json(o));
  EXPECT_EQ(to_json(back), to_json(o));
  EXPECT_EQ(back.schedule, Schedule::one_cycle);
  EXPECT_DOUBLE_EQ(back.layer_decay, 0.7);
  TrainOptions bad;
  bad.label_smoothing = 1.5;
  EXPECT_THROW(validate(bad), UsageError);
  bad = TrainOptions{};
  bad.schedule = Schedule::cosine;
  bad.reduce_lr.enabled = true;
  EXPECT_THROW(validate(bad), UsageError);
}

TEST(Tta, FlipAveragesTheLogitsOfTheImageAndItsMirror) {
  torch::manual_seed(2);
  nn::Network net(tiny_spec(), 2, 8, 8);
  net->eval();
  torch::NoGradGuard g;
  const auto x = torch::rand({3, 3, 8, 8}) * 255;
  const auto expected = (net->forward(x) + net->forward(x.flip({3}))) / 2;
  EXPECT_TRUE(torch::allclose(forward_with_tta(*net, x, 0, Tta::flip), expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(forward_with_tta(*net, x, 0, Tta::none), net->forward(x)));
  EXPECT_THROW(parse_tta("five-crop"), UsageError);
}

TEST(LrFinder, RatesGrowExponentiallyAndTheSuggestionSitsInTheLongestFall) {
  LrFindOptions o;
  o.start_lr = 1e-6;
  o.end_lr = 1.0;
  o.steps = 61;
  EXPECT_DOUBLE_EQ(range_test_lr(o, 0), 1e-6);
  EXPECT_NEAR(range_test_lr(o, 30), 1e-3, 1e-15);
  EXPECT_NEAR(range_test_lr(o, 60), 1.0, 1e-12);
  // Flat until 1e-5, falling until 1e-2, then rising: the fall's middle is near 3e-4.
  LrFindResult r;
  for (int i = 0; i < o.steps; ++i) {
    const double lr = range_test_lr(o, i), decade = std::log10(lr);
    r.lrs.push_back(lr);
    const double loss = decade < -5 ? 2.0 : decade < -2 ? 2.0 - 0.5 * (decade + 5) : 0.5 + 2.0 * (decade + 2);
    r.losses.push_back(loss);
    r.smoothed.push_back(loss);
  }
  choose_suggestion(r);
  EXPECT_NEAR(std::log10(r.minimum_lr), -2, 0.11);
  EXPECT_GT(r.suggested_lr, 1e-4);
  EXPECT_LT(r.suggested_lr, 1e-3);
}

// ---- Through the binary ----

constexpr const char* kRecipeTestModel = R"(name = "tiny-bn"
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
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dropout"
rate = 0.1
[[layers]]
type = "Dense"
units = 2
[train]
image_size = [16, 20]
)";

struct RecipeData {
  fs::path train, val, model;
};

RecipeData recipe_data(const fs::path& dir) {
  RecipeData d{dir / "train", dir / "val", dir / "tiny.toml"};
  testing::write_two_class_folder(d.train, 16, 24, 1);
  testing::write_two_class_folder(d.val, 6, 24, 2);
  testing::write_bytes(d.model, kRecipeTestModel);
  return d;
}

std::vector<std::string> every_option_args(const RecipeData& d, const fs::path& out) {
  return {"train",      "--data", d.train.string(), "--val", d.val.string(),
          "--model",    d.model.string(), "--epochs", "4",    "--batch-size", "8", "--seed", "5",
          "--out",      out.string(),     "--threads", "1",   "--optimizer", "adamw", "--lr", "0.01",
          "--schedule", "cosine",         "--warmup-epochs", "0.5", "--label-smoothing", "0.1",
          "--mixup",    "0.4",            "--cutmix", "1.0",  "--ema", "0.9", "--augment", "flip,rotation=0.05",
          "--keep",     "best",           "--no-report"};
}

TEST(RecipeCli, EveryNewOptionSurvivesAStopAndResumeBitIdentically) {
  const fs::path dir = scratch_dir("recipe_resume");
  const RecipeData d = recipe_data(dir);
  CommandResult r = run_tabby(every_option_args(d, dir / "whole"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto args = every_option_args(d, dir / "parts");
  args.insert(args.end(), {"--stop-after", "2"});
  r = run_tabby(args);
  ASSERT_NE(r.exit_code, 0);
  r = run_tabby({"train", "--resume", (dir / "parts").string(), "--threads", "1", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  testing::expect_same_tensors(dir / "whole" / "weights.safetensors", dir / "parts" / "weights.safetensors");
  testing::expect_same_tensors(dir / "whole" / "best.safetensors", dir / "parts" / "best.safetensors");
  const auto run = testing::read_json(dir / "whole" / "run.json");
  const auto& t = run.at("train");
  EXPECT_EQ(t.at("schedule"), "cosine");
  EXPECT_EQ(t.at("ema"), 0.9);
  EXPECT_EQ(t.at("mixup"), 0.4);
  // [train] image_size = [16, 20] is the run's size, not the default 180.
  EXPECT_EQ(run.at("image_size"), nlohmann::json({16, 20})) << run.dump();
  // The learning rate followed the schedule: warmup, then down to almost nothing.
  const std::string history = read_file(dir / "whole" / "history.csv");
  EXPECT_NE(history.find("lr"), std::string::npos);
}

TEST(RecipeCli, ARecipeIsRecordedAndOneThatNeedsABackboneSaysSo) {
  const fs::path dir = scratch_dir("recipe_cli");
  const RecipeData d = recipe_data(dir);
  CommandResult r = run_tabby({"train", "--data", d.train.string(), "--model", d.model.string(), "--recipe",
                               "finetune", "--out", (dir / "a").string(), "--threads", "1"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--recipe finetune fine-tunes a pretrained backbone"), std::string::npos) << r.err;
  r = run_tabby({"train", "--data", d.train.string(), "--model", d.model.string(), "--recipe", "nope", "--out",
                 (dir / "b").string()});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("unknown recipe 'nope'"), std::string::npos) << r.err;
  r = run_tabby({"train", "--data", d.train.string(), "--val", d.val.string(), "--model", d.model.string(),
                 "--recipe", "scratch", "--epochs", "1", "--augment", "flip", "--out", (dir / "c").string(),
                 "--threads", "1", "--no-report", "--batch-size", "8"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("recipe scratch"), std::string::npos) << r.err;
  const auto t = testing::read_json(dir / "c" / "run.json").at("train");
  EXPECT_EQ(t.at("recipe"), "scratch");
  EXPECT_EQ(t.at("schedule"), "one_cycle");
  EXPECT_EQ(t.at("epochs"), 1) << "a flag wins over the recipe";
  EXPECT_EQ(t.at("augment"), "flip");
  // A model file may name its recipe; it is applied, not only recorded.
  testing::write_bytes(dir / "with_recipe.toml", std::string(kRecipeTestModel) + "recipe = \"scratch\"\n");
  r = run_tabby({"train", "--data", d.train.string(), "--model", (dir / "with_recipe.toml").string(), "--epochs", "1",
                 "--out", (dir / "d").string(), "--threads", "1", "--no-report", "--batch-size", "8"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto from_file = testing::read_json(dir / "d" / "run.json").at("train");
  EXPECT_EQ(from_file.at("recipe"), "scratch");
  EXPECT_EQ(from_file.at("schedule"), "one_cycle");
  EXPECT_EQ(from_file.at("label_smoothing"), 0.1);
}

TEST(RecipeCli, BadTrainTableImageSizeAndFlagValuesAreRefusedByName) {
  const fs::path dir = scratch_dir("recipe_bad_keys");
  RecipeData d = recipe_data(dir);
  testing::write_bytes(d.model, std::string(kRecipeTestModel) + "");
  std::string text = kRecipeTestModel;
  text.replace(text.find("image_size = [16, 20]"), 21, "image_size = \"big\"");
  testing::write_bytes(dir / "bad.toml", text);
  CommandResult r = run_tabby({"train", "--data", d.train.string(), "--model", (dir / "bad.toml").string(), "--out",
                               (dir / "x").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("`image_size` must be an integer N or a list [H, W]"), std::string::npos) << r.err;
  r = run_tabby({"train", "--data", d.train.string(), "--model", d.model.string(), "--label-smoothing", "lots",
                 "--out", (dir / "y").string()});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--label-smoothing expects a number, got 'lots'"), std::string::npos) << r.err;
  r = run_tabby({"train", "--data", d.train.string(), "--model", d.model.string(), "--schedule", "cosine",
                 "--reduce-lr", "--out", (dir / "z").string()});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("both set the learning rate"), std::string::npos) << r.err;
}

TEST(RecipeCli, LrFindWritesItsCurveAndChartAndTtaEvaluates) {
  const fs::path dir = scratch_dir("recipe_lr_find");
  const RecipeData d = recipe_data(dir);
  CommandResult r = run_tabby({"lr-find", "--data", d.train.string(), "--model", d.model.string(), "--steps", "30",
                               "--batch-size", "8", "--out", (dir / "lrf").string(), "--threads", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j.at("suggested_lr").get<double>(), 1e-7);
  EXPECT_LT(j.at("suggested_lr").get<double>(), 10.0);
  EXPECT_TRUE(fs::is_regular_file(dir / "lrf" / "lr_find.csv"));
  EXPECT_TRUE(fs::is_regular_file(dir / "lrf" / "lr_find.json"));
  EXPECT_EQ(testing::lines_of(read_file(dir / "lrf" / "lr_find.csv")).size(), j.at("steps").get<size_t>() + 1);
  r = run_tabby({"lr-find", "--data", d.train.string(), "--model", d.model.string(), "--steps", "2", "--out",
                 (dir / "lrf2").string()});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--steps must be at least"), std::string::npos) << r.err;
  // A flag that means nothing to a range test is refused, not ignored.
  r = run_tabby({"lr-find", "--data", d.train.string(), "--model", d.model.string(), "--early-stopping", "--out",
                 (dir / "lrf3").string()});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--early-stopping"), std::string::npos) << r.err;

  r = run_tabby({"train", "--data", d.train.string(), "--model", d.model.string(), "--epochs", "1", "--out",
                 (dir / "run").string(), "--threads", "1", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = run_tabby({"evaluate", (dir / "run").string(), "--data", d.val.string(), "--tta", "flip", "--json"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  r = run_tabby({"predict", (dir / "run").string(), d.val.string(), "--tta", "mirror"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_NE(r.err.find("--tta mirror: unknown test-time augmentation"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tabby
