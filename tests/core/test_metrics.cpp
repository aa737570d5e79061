// Classification metrics against hand-computed cases, including the example
// from scikit-learn's classification_report documentation, classes that are
// never predicted or never present, and the JSON and text layouts.
#include <gtest/gtest.h>

#include <cmath>

#include "tabby/metrics/classification.h"
#include "tabby/metrics/predictions.h"
#include "tabby/util/error.h"

using namespace tabby::metrics;

namespace {

void expect_scores(const ClassScores& s, double precision, double recall, double f1, int64_t support) {
  EXPECT_NEAR(s.precision, precision, 1e-9) << s.name;
  EXPECT_NEAR(s.recall, recall, 1e-9) << s.name;
  EXPECT_NEAR(s.f1, f1, 1e-9) << s.name;
  EXPECT_EQ(s.support, support) << s.name;
}

void expect_no_nan(const ClassificationReport& r) {
  EXPECT_FALSE(std::isnan(r.accuracy));
  auto check = [](const ClassScores& s) {
    EXPECT_FALSE(std::isnan(s.precision) || std::isnan(s.recall) || std::isnan(s.f1)) << s.name;
  };
  for (const auto& c : r.classes) check(c);
  check(r.macro_avg);
  check(r.weighted_avg);
}

}  // namespace

TEST(ConfusionMatrix, CountsRowsTrueColumnsPredicted) {
  ConfusionMatrix m = confusion_matrix({0, 1, 2, 2, 2}, {0, 0, 2, 2, 1}, 3);
  ASSERT_EQ(m.num_classes, 3);
  EXPECT_EQ(m.counts, (std::vector<int64_t>{1, 0, 0, 1, 0, 0, 0, 1, 2}));
  EXPECT_EQ(m.at(1, 0), 1);  // a true 1 predicted as 0
  EXPECT_EQ(m.at(2, 1), 1);
  EXPECT_EQ(m.total(), 5);
  EXPECT_EQ(m.correct(), 3);
  EXPECT_EQ(m.true_count(2), 3);
  EXPECT_EQ(m.predicted_count(0), 2);
}

TEST(ConfusionMatrix, RejectsBadInput) {
  EXPECT_THROW(confusion_matrix({0, 1}, {0}, 2), tabby::Error);
  EXPECT_THROW(confusion_matrix({0, 2}, {0, 1}, 2), tabby::Error);
  EXPECT_THROW(confusion_matrix({0, 1}, {0, -1}, 2), tabby::Error);
  EXPECT_THROW(confusion_matrix({}, {}, 0), tabby::Error);
}

// scikit-learn's documented example: y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1].
TEST(ClassificationReport, ScikitLearnDocumentationExample) {
  ClassificationReport r =
      classification_report(confusion_matrix({0, 1, 2, 2, 2}, {0, 0, 2, 2, 1}, 3), {"class 0", "class 1", "class 2"});
  ASSERT_EQ(r.classes.size(), 3u);
  // class 0: tp 1, predicted 2, support 1.  F1 = 2*1 / (2 + 1).
  expect_scores(r.classes[0], 0.5, 1.0, 2.0 / 3, 1);
  // class 1: never right; predicted once.
  expect_scores(r.classes[1], 0.0, 0.0, 0.0, 1);
  // class 2: tp 2, predicted 2, support 3.  F1 = 4 / (2 + 3).
  expect_scores(r.classes[2], 1.0, 2.0 / 3, 0.8, 3);
  EXPECT_NEAR(r.accuracy, 0.6, 1e-12);
  EXPECT_EQ(r.total, 5);
  expect_scores(r.macro_avg, 0.5, (1 + 0 + 2.0 / 3) / 3, (2.0 / 3 + 0 + 0.8) / 3, 5);
  expect_scores(r.weighted_avg, (0.5 + 0 + 3 * 1.0) / 5, (1 + 0 + 3 * 2.0 / 3) / 5, (2.0 / 3 + 0 + 3 * 0.8) / 5, 5);

  // The text scikit-learn prints for this case (its documentation shows it).
  const std::string expected =
      "              precision    recall  f1-score   support\n"
      "\n"
      "     class 0       0.50      1.00      0.67         1\n"
      "     class 1       0.00      0.00      0.00         1\n"
      "     class 2       1.00      0.67      0.80         3\n"
      "\n"
      "    accuracy                           0.60         5\n"
      "   macro avg       0.50      0.56      0.49         5\n"
      "weighted avg       0.70      0.60      0.61         5\n";
  EXPECT_EQ(format_classification_report(r), expected);
}

TEST(ClassificationReport, BinaryCatsAndDogs) {
  // 4 cats (one called a dog), 6 dogs (one called a cat): matrix [[3, 1], [1, 5]].
  ClassificationReport r = classification_report(
      confusion_matrix({0, 0, 0, 0, 1, 1, 1, 1, 1, 1}, {0, 0, 0, 1, 1, 1, 1, 1, 0, 1}, 2), {"cat", "dog"});
  expect_scores(r.classes[0], 0.75, 0.75, 0.75, 4);
  expect_scores(r.classes[1], 5.0 / 6, 5.0 / 6, 5.0 / 6, 6);
  EXPECT_NEAR(r.accuracy, 0.8, 1e-12);
  // Macro: plain mean; weighted: by support 4 and 6 - they differ here.
  expect_scores(r.macro_avg, (0.75 + 5.0 / 6) / 2, (0.75 + 5.0 / 6) / 2, (0.75 + 5.0 / 6) / 2, 10);
  expect_scores(r.weighted_avg, 0.8, 0.8, 0.8, 10);

  // digits=3; the name column is as wide as "weighted avg".
  const std::string expected =
      "              precision    recall  f1-score   support\n"
      "\n"
      "         cat      0.750     0.750     0.750         4\n"
      "         dog      0.833     0.833     0.833         6\n"
      "\n"
      "    accuracy                          0.800        10\n"
      "   macro avg      0.792     0.792     0.792        10\n"
      "weighted avg      0.800     0.800     0.800        10\n";
  EXPECT_EQ(format_classification_report(r, 3), expected);
}

TEST(ClassificationReport, ClassNeverPredictedHasPrecisionZero) {
  // Class 1 appears once and is never predicted: precision is 0/0 -> 0.
  ClassificationReport r = classification_report(confusion_matrix({0, 1, 2, 2}, {0, 0, 2, 2}, 3));
  expect_no_nan(r);
  EXPECT_EQ(r.classes[1].name, "1");
  expect_scores(r.classes[1], 0.0, 0.0, 0.0, 1);
  expect_scores(r.classes[0], 0.5, 1.0, 2.0 / 3, 1);
  expect_scores(r.classes[2], 1.0, 1.0, 1.0, 2);
  EXPECT_NEAR(r.macro_avg.precision, 0.5, 1e-12);
}

TEST(ClassificationReport, ClassAbsentFromTruthHasSupportZeroAndCountsInMacroAverage) {
  // Class 2 never occurs but is predicted once; it still counts in the macro
  // average (scikit-learn with labels=[0, 1, 2]) but weighs 0 in the weighted one.
  ClassificationReport r = classification_report(confusion_matrix({0, 0, 1}, {0, 2, 1}, 3), {"a", "b", "c"});
  expect_no_nan(r);
  expect_scores(r.classes[0], 1.0, 0.5, 2.0 / 3, 2);
  expect_scores(r.classes[1], 1.0, 1.0, 1.0, 1);
  expect_scores(r.classes[2], 0.0, 0.0, 0.0, 0);
  expect_scores(r.macro_avg, 2.0 / 3, 0.5, (2.0 / 3 + 1) / 3, 3);
  expect_scores(r.weighted_avg, 1.0, (0.5 * 2 + 1) / 3, (2.0 / 3 * 2 + 1) / 3, 3);
}

TEST(ClassificationReport, AllCorrect) {
  ClassificationReport r = classification_report(confusion_matrix({0, 1, 1, 2}, {0, 1, 1, 2}, 3));
  EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
  for (const auto& c : r.classes) expect_scores(c, 1, 1, 1, c.support);
  expect_scores(r.macro_avg, 1, 1, 1, 4);
  expect_scores(r.weighted_avg, 1, 1, 1, 4);
}

TEST(ClassificationReport, NoSamplesGivesZerosNotNaN) {
  ClassificationReport r = classification_report(confusion_matrix({}, {}, 2), {"x", "y"});
  expect_no_nan(r);
  EXPECT_EQ(r.total, 0);
  EXPECT_EQ(r.accuracy, 0);
  expect_scores(r.weighted_avg, 0, 0, 0, 0);
}

TEST(ClassificationReport, NameCountMustMatchClasses) {
  EXPECT_THROW(classification_report(confusion_matrix({0}, {0}, 2), {"only one"}), tabby::Error);
}

TEST(ClassificationReport, LongNamesWidenTheNameColumn) {
  ClassificationReport r = classification_report(confusion_matrix({0, 1}, {0, 1}, 2), {"a", "golden retriever puppy"});
  const std::string text = format_classification_report(r);
  // 22 characters of name column, then the numbers.
  EXPECT_NE(text.find("\ngolden retriever puppy       1.00      1.00      1.00         1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n                     a       1.00"), std::string::npos) << text;
  EXPECT_EQ(text.substr(0, 23 + 10), std::string(23, ' ') + " precision");
}

TEST(ClassificationReport, Json) {
  ClassificationReport r = classification_report(confusion_matrix({0, 1, 2, 2, 2}, {0, 0, 2, 2, 1}, 3),
                                                 {"class 0", "class 1", "class 2"});
  nlohmann::json j = to_json(r);
  ASSERT_EQ(j["classes"].size(), 3u);
  EXPECT_EQ(j["classes"][0]["name"], "class 0");
  EXPECT_DOUBLE_EQ(j["classes"][0]["precision"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["classes"][2]["f1"].get<double>(), 0.8);
  EXPECT_EQ(j["classes"][2]["support"].get<int64_t>(), 3);
  EXPECT_DOUBLE_EQ(j["accuracy"].get<double>(), 0.6);
  EXPECT_EQ(j["total"].get<int64_t>(), 5);
  EXPECT_DOUBLE_EQ(j["macro_avg"]["precision"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["weighted_avg"]["recall"].get<double>(), 0.6);
  EXPECT_EQ(j["weighted_avg"]["support"].get<int64_t>(), 5);

  nlohmann::json m = to_json(confusion_matrix({0, 1, 1}, {0, 0, 1}, 2), {"cat", "dog"});
  EXPECT_EQ(m["labels"], nlohmann::json({"cat", "dog"}));
  EXPECT_EQ(m["matrix"], nlohmann::json({{1, 0}, {1, 1}}));
  EXPECT_EQ(m["rows"], "true");
}

TEST(ConfusionMatrixText, NamedTable) {
  const std::string text = format_confusion_matrix(confusion_matrix({0, 0, 1, 1, 1}, {0, 1, 1, 1, 0}, 2), {"cat", "dog"});
  const std::string expected =
      "true \\ predicted  cat  dog\n"
      "cat                 1    1\n"
      "dog                 1    2\n";
  EXPECT_EQ(text, expected);
}

TEST(ConfusionMatrixText, LongNamesSwitchToIndexColumns) {
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("a rather long class name " + std::to_string(i));
  std::vector<int> y;
  for (int i = 0; i < 10; ++i) y.push_back(i);
  const std::string text = format_confusion_matrix(confusion_matrix(y, y, 10), names, 100);
  const auto first_line = text.substr(0, text.find('\n'));
  EXPECT_LE(first_line.size(), 100u) << text;
  EXPECT_NE(first_line.find("  0  1  2"), std::string::npos) << text;
  EXPECT_NE(text.find("[9] a rather long class name 9"), std::string::npos) << text;
}

TEST(MajorityBaseline, PicksLargestClass) {
  MajorityBaseline b = majority_baseline({30, 70});
  EXPECT_EQ(b.class_index, 1);
  EXPECT_DOUBLE_EQ(b.accuracy, 0.7);
  EXPECT_EQ(majority_baseline({5, 5, 2}).class_index, 0);  // tie: lowest index
  EXPECT_EQ(majority_baseline({}).class_index, -1);
  EXPECT_EQ(majority_baseline({0, 0}).accuracy, 0.0);
}

TEST(Predictions, Accuracy) {
  EXPECT_DOUBLE_EQ(accuracy({0, 1, 1, 0}, {0, 1, 0, 0}), 0.75);
  EXPECT_EQ(accuracy({}, {}), 0.0);
  EXPECT_THROW(accuracy({0}, {}), tabby::Error);
}

TEST(Predictions, LogLoss) {
  // p(true) = 0.5 -> ln 2; p(true) = 0 -> -ln(1e-7), finite; p(true) = 1 -> 0.
  const std::vector<float> probs = {0.5f, 0.5f, 1.0f, 0.0f, 0.0f, 1.0f};
  const std::vector<float> losses = per_sample_log_loss(probs, {0, 1, 1}, 2);
  ASSERT_EQ(losses.size(), 3u);
  EXPECT_NEAR(losses[0], std::log(2.0), 1e-6);
  EXPECT_NEAR(losses[1], -std::log(1e-7), 1e-4);
  EXPECT_NEAR(losses[2], 0.0, 1e-6);
  EXPECT_THROW(per_sample_log_loss(probs, {0, 1}, 2), tabby::Error);
  EXPECT_THROW(per_sample_log_loss(probs, {0, 1, 2}, 2), tabby::Error);
}

TEST(Predictions, TopLosses) {
  const std::vector<float> losses = {0.1f, 2.0f, 0.5f, 2.0f, NAN, 0.0f};
  // NaN first, then largest; equal losses keep index order.
  EXPECT_EQ(top_losses(losses, 4), (std::vector<size_t>{4, 1, 3, 2}));
  EXPECT_EQ(top_losses(losses, 100).size(), 6u);
  EXPECT_TRUE(top_losses({}, 3).empty());
  EXPECT_TRUE(top_losses(losses, 0).empty());
}
