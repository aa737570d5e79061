// `tabby run EXPERIMENT.toml` end to end on tiny images the test writes: two
// tiny models trained on the same split; the comparison as text, CSV and
// JSON; the overlaid curves; the experiment report; running again keeps
// finished models, refuses runs trained with other settings unless
// --retrain, and resumes models that were interrupted.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>
#include <sstream>
#include <string_view>
#include <string>

#include "support/test_support.h"
#include "support/training_data.h"
#include "tabby/api/experiment.h"
#include "tabby/image/decode.h"
#include "support/image_encode.h"
#include "tabby/report/base64.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::run_tabby;
using testing::lines_of;
using testing::write_tinted_images;

constexpr const char* kModelA = R"(name = "tiny-conv"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 4
kernel_size = 3
activation = "relu"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
activation = "softmax"
)";

constexpr const char* kModelB = R"(name = "tiny-dense"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Flatten"
[[layers]]
type = "Dense"
activation = "softmax"
)";

// An experiment over data in `root`; model b trains `b_epochs` epochs.
std::string experiment_toml(const fs::path& root, int b_epochs) {
  return "name = \"tiny\"\ndescription = \"two tiny models\"\n"
         "[data]\ndata = \"" + (root / "train").string() + "\"\nvalidation_split = 0.25\ntest = \"" +
         (root / "test").string() + "\"\nimage_size = 16\nseed = 3\n"
         "[train]\nepochs = 2\nbatch_size = 4\n"
         "[[models]]\nname = \"a\"\nmodel = \"a.toml\"\ndescription = \"conv\"\n"
         "[[models]]\nname = \"b\"\nmodel = \"b.toml\"\nepochs = " + std::to_string(b_epochs) + "\n";
}

fs::path make_experiment(const std::string& name) {
  const fs::path root = testing::scratch_dir(name);
  write_tinted_images(root / "train/cat", 8, true, 1);
  write_tinted_images(root / "train/dog", 8, false, 2);
  write_tinted_images(root / "test/cat", 4, true, 3);
  write_tinted_images(root / "test/dog", 4, false, 4);
  testing::write_bytes(root / "a.toml", kModelA);
  testing::write_bytes(root / "b.toml", kModelB);
  testing::write_bytes(root / "exp.toml", experiment_toml(root, 1));
  return root;
}

TEST(ExperimentRun, TrainsComparesAndReports) {
  const fs::path root = make_experiment("experiment_run");
  const fs::path out = root / "out";
  auto r = run_tabby({"run", (root / "exp.toml").string(), "--out", out.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["trained"], 2);
  ASSERT_EQ(j["models"].size(), 2u);
  for (const auto& m : j["models"]) {
    EXPECT_EQ(m["status"], "finished") << m.dump();
    EXPECT_GT(m["parameters"].get<int64_t>(), 0);
    EXPECT_TRUE(m["test_accuracy"].is_number());
    EXPECT_TRUE(m["best_val_accuracy"].is_number());
    EXPECT_GE(m["train_seconds"].get<double>(), 0.0);
  }
  EXPECT_EQ(j["models"][0]["model"], "a");
  EXPECT_EQ(j["models"][0]["epochs"], 2);
  EXPECT_EQ(j["models"][1]["epochs"], 1);
  // The conv model: 4*3*3*3 + 4 conv weights, 4*2 + 2 dense; b: 16*16*3*2 + 2.
  EXPECT_EQ(j["models"][0]["parameters"], 4 * 27 + 4 + 4 * 2 + 2);
  EXPECT_EQ(j["models"][1]["parameters"], 16 * 16 * 3 * 2 + 2);

  // The comparison as CSV (numbers as in the JSON) and as a text table.
  const auto csv = lines_of(read_file(out / "comparison.csv"));
  ASSERT_EQ(csv.size(), 3u);
  EXPECT_EQ(csv[0].rfind("model,from,parameters,trainable_parameters,epochs,best_val_accuracy", 0), 0u) << csv[0];
  EXPECT_EQ(csv[1].rfind("a,", 0), 0u);
  EXPECT_NE(csv[1].find(std::to_string(4 * 27 + 4 + 4 * 2 + 2)), std::string::npos);
  const std::string md = read_file(out / "comparison.md");
  EXPECT_NE(md.find("| a "), std::string::npos) << md;
  EXPECT_NE(md.find("| b "), std::string::npos) << md;
  EXPECT_NE(md.find("test accuracy"), std::string::npos) << md;
  const json from_file = json::parse(read_file(out / "comparison.json"));
  EXPECT_EQ(from_file, j["models"]);

  // Both models' runs trained on the same split.
  const json run_a = json::parse(read_file(out / "a/run.json"));
  const json run_b = json::parse(read_file(out / "b/run.json"));
  EXPECT_EQ(run_a["images"], run_b["images"]);
  EXPECT_EQ(run_a["data"], run_b["data"]);

  // Overlaid curves and the reports.
  const Image accuracy = decode_image_file(out / "charts/accuracy.png");
  EXPECT_EQ(accuracy.width, 900);
  EXPECT_EQ(accuracy.height, 520);
  EXPECT_GT(decode_image_file(out / "charts/loss.png").width, 0);
  for (const char* f : {"a/report.html", "b/report.html", "a/evaluation.json", "report.html"}) {
    EXPECT_TRUE(fs::is_regular_file(out / f)) << f;
  }
  const std::string html = read_file(out / "report.html");
  for (const char* s : {">Comparison<", ">Curves<", ">Model a<", ">Model b<", "two tiny models", "best val accuracy"}) {
    EXPECT_NE(html.find(s), std::string::npos) << s;
  }
  const std::string prefix = "<img src=\"data:image/png;base64,";
  int images = 0;
  for (size_t at = html.find(prefix); at != std::string::npos; at = html.find(prefix, at + 1), ++images) {
    const size_t begin = at + prefix.size();
    auto bytes = report::base64_decode(std::string_view(html).substr(begin, html.find('"', begin) - begin));
    ASSERT_TRUE(bytes.has_value());
    EXPECT_GT(decode_image(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()).width, 0);
  }
  // 2 overlaid + per model 2 curves and a confusion matrix.
  EXPECT_GE(images, 2 + 2 * 3);

  // Again: nothing to train.
  r = run_tabby({"run", (root / "exp.toml").string(), "--out", out.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["trained"], 0);
  EXPECT_EQ(j["kept"], 2);

  // Model b changed: its finished run no longer matches the file.
  testing::write_bytes(root / "exp.toml", experiment_toml(root, 2));
  r = run_tabby({"run", (root / "exp.toml").string(), "--out", out.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("other settings"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--retrain"), std::string::npos) << r.err;
  r = run_tabby({"run", (root / "exp.toml").string(), "--out", out.string(), "--retrain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| b "), std::string::npos) << r.out;
  EXPECT_EQ(lines_of(read_file(out / "b/history.csv")).size(), 3u);  // header + 2 epochs
}

TEST(ExperimentRun, InterruptedModelsResume) {
  const fs::path root = make_experiment("experiment_resume");
  testing::write_bytes(root / "exp.toml", experiment_toml(root, 2));
  const fs::path out = root / "out";
  auto r = run_tabby({"run", (root / "exp.toml").string(), "--out", out.string(), "--only", "a", "--stop-after", "1",
                      "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["models"][1]["status"], "not run");

  r = run_tabby({"run", (root / "exp.toml").string(), "--out", out.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["resumed"], 1);
  EXPECT_EQ(j["trained"], 1);
  EXPECT_EQ(j["models"][0]["status"], "finished");
  EXPECT_EQ(j["models"][0]["epochs"], 2);
}

TEST(ExperimentRun, BadInput) {
  const fs::path root = make_experiment("experiment_bad");
  auto r = run_tabby({"run", (root / "nope.toml").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("nope.toml"), std::string::npos) << r.err;
  r = run_tabby({"run", (root / "exp.toml").string(), "--out", (root / "o").string(), "--only", "zzz"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no model of that name"), std::string::npos) << r.err;
  testing::write_bytes(root / "broken.toml", "[data]\ndata = \"x\"\n");
  r = run_tabby({"run", (root / "broken.toml").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no models"), std::string::npos) << r.err;
  EXPECT_FALSE(is_experiment_dir(root));
}

}  // namespace
}  // namespace tabby
