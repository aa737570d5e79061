// `tabby demo --quick` on the shared cats-vs-dogs data: the main job runs end
// to end (transfer learning, evaluation, predictions), says what it did and
// where the run is, and the run it leaves is usable by the other commands.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;

TEST(Demo, QuickDemoTrainsEvaluatesAndPredictsOnTheSharedData) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path data = shared / "datasets" / "cats_and_dogs_filtered";
  if (!fs::is_directory(data / "train")) GTEST_SKIP() << "no " << data;
  if (!fs::is_regular_file(shared / "weights" / "mobilenet_v2_imagenet.safetensors")) {
    GTEST_SKIP() << "no MobileNetV2 weights in " << shared / "weights";
  }
  const fs::path run = testing::scratch_dir("demo_quick") / "run";
  const auto r = testing::run_tabby({"demo", "--quick", "--out", run.string(), "--data", data.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << "\n" << r.err;

  EXPECT_NE(r.err.find("feature cache"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("fine-tuning"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("Run folder: " + run.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== predictions"), std::string::npos) << r.out;

  std::smatch m;
  const std::regex accuracy_line(R"(reached ([0-9.]+)% validation accuracy \(majority baseline ([0-9.]+)%\))");
  ASSERT_TRUE(std::regex_search(r.out, m, accuracy_line)) << r.out;
  // ImageNet features separate cats from dogs even at 96x96 after two epochs.
  EXPECT_GE(std::stod(m[1].str()), 85.0) << r.out;
  EXPECT_NEAR(std::stod(m[2].str()), 50.0, 0.01);

  const auto eval = testing::run_tabby({"evaluate", run.string(), "--data", (data / "validation").string(), "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_EQ(nlohmann::json::parse(eval.out).at("num_images").get<int>(), 1000);
}

}  // namespace
}  // namespace tabby
