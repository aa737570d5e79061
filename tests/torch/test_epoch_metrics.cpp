// The running metrics of an epoch, read back from the device in groups (the
// GPU setting) or every step (the CPU setting): same sums either way, and a
// non-finite loss is named by its own step even when read later.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <limits>

#include "tabby/train/epoch_metrics.h"

namespace tabby {
namespace {

struct Step {
  float loss;
  int correct;
  int64_t batch;
};

TEST(EpochMetrics, GroupedReadsGiveTheSameSumsAsReadingEveryStep) {
  const std::vector<Step> steps = {{0.5f, 3, 4}, {0.25f, 4, 4}, {1.0f, 1, 4}, {0.75f, 2, 3}};
  EpochMetrics every(1), grouped(3);
  int reads = 0;
  for (const auto& s : steps) {
    every.add(torch::tensor(s.loss), torch::tensor(s.correct), s.batch);
    EXPECT_TRUE(every.due());
    EXPECT_FALSE(every.read().has_value());
    grouped.add(torch::tensor(s.loss), torch::tensor(s.correct), s.batch);
    if (grouped.due()) {
      EXPECT_FALSE(grouped.read().has_value());
      ++reads;
    }
  }
  EXPECT_EQ(reads, 1);
  EXPECT_FALSE(grouped.read().has_value());  // the last, partial group
  const double loss = (0.5 * 4 + 0.25 * 4 + 1.0 * 4 + 0.75 * 3) / 15.0;
  EXPECT_DOUBLE_EQ(every.loss(), loss);
  EXPECT_DOUBLE_EQ(grouped.loss(), loss);
  EXPECT_DOUBLE_EQ(every.accuracy(), 10.0 / 15.0);
  EXPECT_DOUBLE_EQ(grouped.accuracy(), 10.0 / 15.0);
}

TEST(EpochMetrics, ALateReadNamesTheFirstNonFiniteStep) {
  EpochMetrics m(4);
  m.add(torch::tensor(0.5f), torch::tensor(2), 4);
  m.add(torch::tensor(std::numeric_limits<float>::quiet_NaN()), torch::tensor(0), 4);
  m.add(torch::tensor(std::numeric_limits<float>::infinity()), torch::tensor(0), 4);
  EXPECT_FALSE(m.due());
  m.add(torch::tensor(0.25f), torch::tensor(4), 4);
  ASSERT_TRUE(m.due());
  const auto bad = m.read();
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->step, 2);
  EXPECT_TRUE(std::isnan(bad->value));
  // The finite steps still count.
  EXPECT_DOUBLE_EQ(m.loss(), (0.5 * 4 + 0.25 * 4) / 8.0);
  EXPECT_DOUBLE_EQ(m.accuracy(), 6.0 / 8.0);
}

TEST(EpochMetrics, NothingSeenIsZeroNotADivisionByZero) {
  EpochMetrics m(16);
  EXPECT_FALSE(m.read().has_value());
  EXPECT_EQ(m.loss(), 0.0);
  EXPECT_EQ(m.accuracy(), 0.0);
}

}  // namespace
}  // namespace tabby
