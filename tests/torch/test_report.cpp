// Run reports: `tabby train` leaves RUN/report.html with every section and
// embedded images that decode; `tabby report` rewrites it from the cached
// evaluation (or evaluates again); evaluations survive a JSON round trip; bad
// folders give clear errors; and, where Chromium is installed, the page loads
// in a headless browser with no console errors and every image showing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <random>
#include <cstdio>
#include <string_view>
#include <string>

#include "support/test_support.h"
#include "support/training_data.h"
#include "tabby/api/report_job.h"
#include "tabby/image/decode.h"
#include "support/image_encode.h"
#include "tabby/report/base64.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::write_tinted_images;

constexpr const char* kReportModel = R"(name = "tiny"
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

// The <img> sources of a page, decoded from their data URIs. (Scanned by
// hand: std::regex recurses per character and overflows on long base64.)
std::vector<Image> embedded_images(const std::string& html) {
  std::vector<Image> images;
  const std::string prefix = "<img src=\"data:image/png;base64,";
  for (size_t at = html.find(prefix); at != std::string::npos; at = html.find(prefix, at + 1)) {
    const size_t begin = at + prefix.size();
    const size_t end = html.find('"', begin);
    if (end == std::string::npos) break;
    auto bytes = report::base64_decode(std::string_view(html).substr(begin, end - begin));
    EXPECT_TRUE(bytes.has_value());
    if (!bytes) continue;
    images.push_back(decode_image(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()));
  }
  return images;
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class ReportTest : public ::testing::Test {
 protected:
  // One tiny run for every test: trained through the real binary.
  static void SetUpTestSuite() {
    // Per process: ctest runs the tests of this suite in parallel processes.
    root_ = new fs::path(testing::scratch_dir("report_run_" + std::to_string(::getpid())));
    const fs::path& root = *root_;
    write_tinted_images(root / "train/cat", 10, true, 1);
    write_tinted_images(root / "train/dog", 10, false, 2);
    write_tinted_images(root / "test/cat", 4, true, 3);
    write_tinted_images(root / "test/dog", 4, false, 4);
    testing::write_bytes(root / "tiny.toml", kReportModel);
    train_ = new testing::CommandResult(testing::run_tabby(
        {"train", "--data", (root / "train").string(), "--validation-split", "0.2", "--test", (root / "test").string(),
         "--model", (root / "tiny.toml").string(), "--image-size", "16", "--epochs", "2", "--batch-size", "4",
         "--out", (root / "run").string()}));
  }
  static void TearDownTestSuite() {
    delete root_;
    delete train_;
  }
  static fs::path run_dir() { return *root_ / "run"; }
  static fs::path* root_;
  static testing::CommandResult* train_;
};
fs::path* ReportTest::root_ = nullptr;
testing::CommandResult* ReportTest::train_ = nullptr;

TEST_F(ReportTest, TrainWritesTheRunReport) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  EXPECT_NE(train_->out.find("report: "), std::string::npos) << train_->out;
  const fs::path run = run_dir();
  ASSERT_TRUE(fs::is_regular_file(run / "report.html"));

  // The cached evaluation is the test data's, with the numbers train printed.
  const json ev = json::parse(read_file(run / "evaluation.json"));
  const json results = json::parse(read_file(run / "run.json"))["results"];
  EXPECT_EQ(ev["split"], "test");
  EXPECT_EQ(ev["evaluation"]["num_images"], 8);
  EXPECT_DOUBLE_EQ(ev["evaluation"]["accuracy"].get<double>(), results["test"]["accuracy"].get<double>());
  EXPECT_EQ(ev["samples"].size(), 8u);
  for (const auto& s : ev["samples"]) EXPECT_TRUE(fs::is_regular_file(s["file"].get<std::string>()));

  const std::string html = read_file(run / "report.html");
  for (const char* section : {">Data<", ">Model<", ">Training<", ">Test metrics<", ">Classification report<",
                              ">Confusion matrix<", ">Predictions<", "layer (type)", "macro avg", "weighted avg"}) {
    EXPECT_NE(html.find(section), std::string::npos) << section;
  }
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);  // self-contained
  const auto images = embedded_images(html);
  // class counts, accuracy, loss, confusion, predictions (+ mistakes when any)
  EXPECT_GE(images.size(), 5u);
  EXPECT_EQ(images.size(), count_of(html, "<img "));
  for (const auto& image : images) EXPECT_GT(image.width, 0);

  // The same charts as files.
  const Image accuracy = decode_image_file(run / "charts/accuracy.png");
  EXPECT_EQ(accuracy.width, 640);
  EXPECT_EQ(accuracy.height, 400);
  for (const char* chart : {"loss.png", "confusion.png", "predictions.png", "class_counts.png"}) {
    EXPECT_GT(decode_image_file(run / "charts" / chart).width, 0) << chart;
  }
}

TEST_F(ReportTest, ReportCommandReusesOrRedoesTheEvaluation) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  const fs::path other = *root_ / "elsewhere/report.html";
  auto r = testing::run_tabby({"report", run_dir().string(), "--out", other.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["report"], other.string());
  EXPECT_FALSE(j["evaluated"].get<bool>());
  EXPECT_TRUE(fs::is_regular_file(other));

  const double before = json::parse(read_file(run_dir() / "evaluation.json"))["evaluation"]["accuracy"];
  r = testing::run_tabby({"report", run_dir().string(), "--reevaluate", "--json", "--no-charts"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_TRUE(j["evaluated"].get<bool>());
  EXPECT_TRUE(j["charts"].empty());
  const double after = json::parse(read_file(run_dir() / "evaluation.json"))["evaluation"]["accuracy"];
  EXPECT_DOUBLE_EQ(before, after);
}

TEST_F(ReportTest, EvaluateCanWriteAReport) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  const fs::path html = *root_ / "eval_report.html";
  auto r = testing::run_tabby({"evaluate", run_dir().string(), "--data", (*root_ / "test").string(), "--report",
                               html.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["classification_report"]["classes"].size(), 2u);
  EXPECT_EQ(j["confusion_matrix"]["matrix"].size(), 2u);
  const std::string page = read_file(html);
  EXPECT_NE(page.find(">Evaluation metrics<"), std::string::npos);
  EXPECT_GE(embedded_images(page).size(), 4u);
}

TEST_F(ReportTest, RendersInHeadlessChromium) {
  ASSERT_EQ(train_->exit_code, 0) << train_->err;
  // Only a machine where nothing can be installed (the GPU machine) opts out.
  const bool opted_out = std::getenv("TABBY_NO_BROWSER") && std::string(std::getenv("TABBY_NO_BROWSER")) == "1";
  const bool installed = testing::run_command("command -v chromium >/dev/null 2>&1").exit_code == 0;
  if (!installed) {
    if (opted_out) GTEST_SKIP() << "chromium not installed (TABBY_NO_BROWSER=1)";
    FAIL() << "chromium is not installed: scripts/install-deps.sh installs it";
  }
  // A copy of the page with a script that records, once everything loaded,
  // how many images there are and how many failed to show. The page's own
  // policy forbids scripts; the copy allows inline ones and nothing else.
  std::string html = read_file(run_dir() / "report.html");
  const std::string policy = "default-src 'none';";
  ASSERT_NE(html.find(policy), std::string::npos);
  html.replace(html.find(policy), policy.size(), policy + " script-src 'unsafe-inline';");
  const std::string script =
      "<script>window.addEventListener('load', function () {"
      "var imgs = Array.prototype.slice.call(document.images);"
      "var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;"
      "document.body.setAttribute('data-check', 'images=' + imgs.length + ' broken=' + broken);});</script>";
  html.replace(html.rfind("</body>"), 7, script + "</body>");
  const fs::path dir = testing::scratch_dir("report_chromium");
  write_file_atomic(dir / "check.html", html);
  auto r = testing::run_command(
      "timeout 120 chromium --headless --disable-gpu --no-sandbox --no-first-run --user-data-dir=" +
      testing::shell_quote((dir / "profile").string()) +
      " --enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom " +
      testing::shell_quote("file://" + (dir / "check.html").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The attribute the script set, e.g. data-check="images=7 broken=0".
  const size_t at = r.out.find("data-check=\"images=");
  ASSERT_NE(at, std::string::npos) << "the check script did not run:\n" << r.err.substr(0, 2000);
  int images = -1, broken = -1;
  ASSERT_EQ(std::sscanf(r.out.c_str() + at, "data-check=\"images=%d broken=%d", &images, &broken), 2);
  EXPECT_GE(images, 5);
  EXPECT_EQ(broken, 0);
  // Anything the page writes to the console (errors, refused loads) is logged
  // as a CONSOLE line; the page has no script of its own, so there must be none.
  for (const char* bad : {":CONSOLE", "Uncaught", "Refused to"}) {
    EXPECT_EQ(r.err.find(bad), std::string::npos) << bad << " in:\n" << r.err.substr(0, 4000);
  }
}

TEST(Report, EvaluationJsonRoundTrip) {
  // 4 images, 3 classes; class 2 is never predicted.
  EvalResult r;
  r.count = 4;
  r.accuracy = 0.5;
  r.loss = 0.9;
  r.probabilities = torch::tensor({0.8f, 0.1f, 0.1f, 0.3f, 0.6f, 0.1f, 0.7f, 0.2f, 0.1f, 0.2f, 0.5f, 0.3f}).view({4, 3});
  r.labels = torch::tensor({0, 1, 1, 2}, torch::kLong);
  r.losses = torch::tensor({0.2f, 0.5f, 1.6f, 1.2f});
  r.indices = torch::tensor({0, 1, 2, 3}, torch::kLong);
  const std::vector<fs::path> paths = {"a.png", "b.png", "c.png", "d.png"};
  EvaluateOutcome o = summarize_evaluation(r, {"x", "y", "z"}, paths, 5);
  o.data_source = "somewhere";
  RunEvaluation ev = make_run_evaluation(o, "test", 3);
  ASSERT_EQ(ev.samples.size(), 3u);
  for (const auto& s : ev.samples) {
    const size_t row = static_cast<size_t>(std::find(paths.begin(), paths.end(), s.file) - paths.begin());
    ASSERT_LT(row, paths.size());
    EXPECT_EQ(s.label, r.labels[static_cast<int64_t>(row)].item<int64_t>());
  }

  const RunEvaluation back = run_evaluation_from_json(json::parse(to_json(ev).dump()), "e.json");
  EXPECT_EQ(back.split, "test");
  EXPECT_EQ(back.outcome.class_names, o.class_names);
  EXPECT_EQ(back.outcome.confusion.counts, o.confusion.counts);
  EXPECT_EQ(back.outcome.result.count, 4);
  EXPECT_DOUBLE_EQ(back.outcome.result.accuracy, 0.5);
  EXPECT_EQ(back.outcome.data_source, "somewhere");
  ASSERT_EQ(back.outcome.report.classes.size(), 3u);
  EXPECT_DOUBLE_EQ(back.outcome.report.classes[2].precision, 0.0);  // never predicted
  EXPECT_DOUBLE_EQ(back.outcome.report.classes[0].precision, 0.5);  // 2 predicted x, 1 right
  EXPECT_EQ(back.outcome.top_losses.size(), o.top_losses.size());
  ASSERT_EQ(back.samples.size(), 3u);
  EXPECT_EQ(back.samples[0].file, ev.samples[0].file);

  EXPECT_THROW(run_evaluation_from_json(json::object(), "e.json"), Error);
  json broken = to_json(ev);
  broken["evaluation"]["confusion_matrix"]["matrix"] = json::array({json::array({1, 2})});
  try {
    run_evaluation_from_json(broken, "e.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e.json"), std::string::npos);
  }
}

TEST(Report, NotARunOrExperiment) {
  const fs::path dir = testing::scratch_dir("report_not_a_run");
  EXPECT_THROW(write_report(dir), UsageError);
  auto r = testing::run_tabby({"report", (dir / "missing").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  r = testing::run_tabby({"report", dir.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("neither a run folder nor an experiment folder"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tabby
