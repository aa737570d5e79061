// tabby::Classifier, the inference API programs embed (and that predict and
// serve use): the same probabilities from a file, its bytes, or its pixels;
// safe to share between threads; thresholds; and `tabby predict` --csv and
// --threshold on top of it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <thread>

#include "support/image_encode.h"
#include "support/test_support.h"
#include "tabby/api/classifier.h"
#include "tabby/api/train_job.h"
#include "tabby/image/decode.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;

constexpr const char* kClassifierModel = R"(name = "tiny-classifier"
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
units = 3
)";

// Three classes of noisy images, one colour each; a few epochs learn them.
void write_classifier_images(const fs::path& root, int per_class, int size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  const char* names[] = {"red", "green", "blue"};
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < per_class; ++i) {
      Image image(size + i % 5, size);  // sizes differ: resizing is part of what is compared
      for (size_t p = 0; p < image.pixels.size(); ++p) {
        image.pixels[p] = static_cast<uint8_t>((static_cast<int>(p % 3) == c ? 170 : 30) + noise(rng));
      }
      testing::write_bytes(root / names[c] / ("img" + std::to_string(i) + ".png"), encode_png(image));
    }
  }
}

class ClassifierTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ctest runs each test of the suite as its own process, in parallel.
    dir_ = new fs::path(testing::scratch_dir("classifier_" + std::to_string(::getpid())));
    write_classifier_images(*dir_ / "train", 12, 20, 1);
    write_classifier_images(*dir_ / "test", 4, 20, 2);
    testing::write_bytes(*dir_ / "model.toml", kClassifierModel);
    TrainJob job;
    job.model = (*dir_ / "model.toml").string();
    job.data.data = (*dir_ / "train").string();
    job.image_height = job.image_width = 16;
    job.train_overrides = {{"epochs", 3}, {"batch_size", 8}, {"lr", 0.02}};
    job.device = "cpu";
    job.threads = 1;
    job.out = *dir_ / "run";
    run_train_job(job);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static fs::path run() { return *dir_ / "run"; }
  static fs::path image(const std::string& cls, int i) { return *dir_ / "test" / cls / ("img" + std::to_string(i) + ".png"); }
  static fs::path* dir_;
};
fs::path* ClassifierTest::dir_ = nullptr;

TEST_F(ClassifierTest, FileBytesAndPixelsGiveTheSameProbabilities) {
  const Classifier c = Classifier::load(run(), {"cpu", 1});
  EXPECT_EQ(c.name(), "tiny-classifier");
  EXPECT_EQ(c.class_names(), (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_EQ(c.input_height(), 16);
  const fs::path file = image("green", 1);
  const Classification from_file = c.classify_file(file, 3);
  const std::string bytes = read_file(file);
  const Classification from_bytes = c.classify_encoded(bytes.data(), bytes.size(), 3);
  const Image pixels = decode_image_file(file);
  const Classification from_pixels = c.classify_rgb(pixels.pixels.data(), pixels.width, pixels.height, 3);
  ASSERT_EQ(from_file.top_k.size(), 3u);
  double sum = 0;
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(from_bytes.top_k[k].label, from_file.top_k[k].label);
    EXPECT_EQ(from_pixels.top_k[k].label, from_file.top_k[k].label);
    EXPECT_NEAR(from_bytes.top_k[k].probability, from_file.top_k[k].probability, 1e-6);
    EXPECT_NEAR(from_pixels.top_k[k].probability, from_file.top_k[k].probability, 1e-6);
    sum += from_file.top_k[k].probability;
    if (k > 0) EXPECT_GE(from_file.top_k[k - 1].probability, from_file.top_k[k].probability);
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_EQ(from_file.label, from_file.top_k[0].label);
  // The colours are learnt (3 epochs are plenty for these images).
  EXPECT_EQ(from_file.label, "green");
  const std::string junk = "not an image";
  EXPECT_THROW(c.classify_encoded(junk.data(), junk.size()), Error);
}

TEST_F(ClassifierTest, OneClassifierServesManyThreads) {
  const Classifier c = Classifier::load(run(), {"cpu", 2});
  std::vector<fs::path> files;
  for (const char* cls : {"red", "green", "blue"}) {
    for (int i = 0; i < 4; ++i) files.push_back(image(cls, i));
  }
  std::vector<Classification> expected;
  for (const auto& f : files) expected.push_back(c.classify_file(f, 3));
  std::vector<std::vector<Classification>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (const auto& f : files) got[t].push_back(c.classify_file(f, 3));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& results : got) {
    ASSERT_EQ(results.size(), 3 * files.size());
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& e = expected[i % files.size()];
      EXPECT_EQ(results[i].label, e.label);
      EXPECT_NEAR(results[i].probability, e.probability, 1e-6);
    }
  }
}

TEST_F(ClassifierTest, ABatchIsTheSameAsOneAtATime) {
  const Classifier c = Classifier::load(run(), {"cpu", 1});
  const size_t row = 16 * 16 * 3;
  std::vector<uint8_t> batch(row * 3);
  std::vector<float> chw(row * 3);
  std::mt19937 rng(5);
  for (auto& v : batch) v = static_cast<uint8_t>(rng() % 256);
  for (int n = 0; n < 3; ++n) {  // HWC bytes -> CHW floats
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        for (int ch = 0; ch < 3; ++ch) {
          chw[n * row + ch * 256 + y * 16 + x] = batch[n * row + (y * 16 + x) * 3 + ch];
        }
      }
    }
  }
  const auto all = c.probabilities_rgb(batch.data(), 3);
  const auto all_chw = c.probabilities_chw(chw.data(), 3);
  ASSERT_EQ(all.size(), 9u);
  for (int n = 0; n < 3; ++n) {
    const auto one = c.probabilities_rgb(batch.data() + n * row, 1);
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(one[k], all[n * 3 + k], 1e-5);
      EXPECT_NEAR(all_chw[n * 3 + k], all[n * 3 + k], 1e-6);
    }
  }
  Classification top = c.top(all.data(), 1);
  apply_threshold(top, 1.01);
  EXPECT_EQ(top.label, "unknown");
  EXPECT_EQ(top.top_k.size(), 1u);
}

TEST_F(ClassifierTest, PredictWritesACsvByPathAndHonoursTheThreshold) {
  const fs::path csv = *dir_ / "predictions.csv";
  // Named in reverse: the CSV is by path all the same.
  const auto r = testing::run_tabby({"predict", run().string(), image("red", 1).string(), image("blue", 0).string(),
                                     "--csv", csv.string(), "--device", "cpu", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(read_file(csv));
  std::string header, first, second, extra;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  EXPECT_FALSE(std::getline(lines, extra));
  EXPECT_EQ(header, "path,label,probability,prob_blue,prob_green,prob_red");
  EXPECT_EQ(first.rfind(image("blue", 0).string() + ",", 0), 0u) << first;
  EXPECT_EQ(second.rfind(image("red", 1).string() + ",", 0), 0u) << second;
  // The CSV's label and probability are the JSON's.
  const auto json = nlohmann::json::parse(r.out);
  const std::string red_label = json[0]["label"];
  EXPECT_NE(second.find("," + red_label + ","), std::string::npos) << second;

  const auto unsure = testing::run_tabby({"predict", run().string(), image("red", 1).string(), "--threshold", "0.999999",
                                          "--device", "cpu", "--json"});
  ASSERT_EQ(unsure.exit_code, 0) << unsure.err;
  EXPECT_EQ(nlohmann::json::parse(unsure.out)[0]["label"], "unknown");
  const auto bad = testing::run_tabby({"predict", run().string(), image("red", 1).string(), "--threshold", "2"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

}  // namespace
}  // namespace tabby
