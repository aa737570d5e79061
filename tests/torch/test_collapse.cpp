// single_predicted_class: when a model's predictions count as collapsed.
#include <gtest/gtest.h>

#include "tabby/train/collapse.h"

namespace tabby {
namespace {

TEST(Collapse, EveryPredictionInOneClassOfSeveralIsACollapse) {
  EXPECT_EQ(single_predicted_class({0, 900}, {450, 450}), 1);
  EXPECT_EQ(single_predicted_class({16, 0, 0}, {5, 5, 6}), 0);
  // The labels need only two classes present; the others may be empty.
  EXPECT_EQ(single_predicted_class({0, 0, 7}, {3, 0, 4}), 2);
}

TEST(Collapse, MixedPredictionsOrASingleLabelClassAreNot) {
  EXPECT_FALSE(single_predicted_class({899, 1}, {450, 450}));
  EXPECT_FALSE(single_predicted_class({3, 0, 4}, {3, 2, 2}));
  // Validation data of one class: predicting it everywhere is simply right.
  EXPECT_FALSE(single_predicted_class({10, 0}, {10, 0}));
  EXPECT_FALSE(single_predicted_class({0, 0}, {4, 4}));  // nothing predicted (no images)
  EXPECT_FALSE(single_predicted_class({}, {}));
}

TEST(Collapse, TheWarningNamesEpochClassCountAndAccuracyAndTheHintAFix) {
  const std::string w = collapse_warning(11, "Cat", 900, 0.50222);
  EXPECT_NE(w.find("since epoch 11"), std::string::npos) << w;
  EXPECT_NE(w.find("'Cat'"), std::string::npos) << w;
  EXPECT_NE(w.find("all 900 validation images"), std::string::npos) << w;
  EXPECT_NE(w.find("0.5022"), std::string::npos) << w;
  EXPECT_NE(collapse_hint().find("Rescaling"), std::string::npos);
  EXPECT_NE(collapse_hint().find("--lr"), std::string::npos);
}

}  // namespace
}  // namespace tabby
