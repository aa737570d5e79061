// Splits: Keras validation_split, the stratified split, TFDS-style split specs
// (parsing, boundary rounding, resolution over split folders) and the real
// shared datasets sliced as the tutorials slice them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "tabby/dataset/dataset.h"
#include "tabby/dataset/folder.h"
#include "tabby/dataset/split.h"
#include "tabby/dataset/split_spec.h"
#include "tabby/util/error.h"
#include "support/test_support.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;

// counts[k] samples of class k, named "k/i", class by class.
Dataset make_dataset(const std::vector<int>& counts) {
  Dataset d;
  d.source = "toy";
  for (size_t k = 0; k < counts.size(); ++k) {
    d.class_names.push_back("class" + std::to_string(k));
    for (int i = 0; i < counts[k]; ++i) d.samples.push_back({std::to_string(k) + "/" + std::to_string(i), static_cast<int>(k)});
  }
  return d;
}

std::vector<std::string> names(const Dataset& d) {
  std::vector<std::string> out;
  for (const auto& s : d.samples) out.push_back(s.path.string());
  return out;
}

std::set<std::string> name_set(const Dataset& d) {
  const auto n = names(d);
  return {n.begin(), n.end()};
}

bool disjoint(const Dataset& a, const Dataset& b) {
  const auto sa = name_set(a);
  for (const auto& s : b.samples) {
    if (sa.count(s.path.string())) return false;
  }
  return true;
}

// Every sample of `whole` is in exactly one part, with its label.
void expect_partition(const Dataset& whole, const std::vector<const Dataset*>& parts) {
  std::multiset<std::pair<std::string, int>> expected, got;
  for (const auto& s : whole.samples) expected.insert({s.path.string(), s.label});
  for (const Dataset* p : parts) {
    EXPECT_EQ(p->class_names, whole.class_names);
    for (const auto& s : p->samples) got.insert({s.path.string(), s.label});
  }
  EXPECT_EQ(got, expected);
}

// Positions of a part's samples in `whole` increase: the part keeps the input's order.
bool keeps_order(const Dataset& whole, const Dataset& part) {
  const auto all = names(whole);
  long last = -1;
  for (const auto& n : names(part)) {
    const long at = std::find(all.begin(), all.end(), n) - all.begin();
    if (at <= last) return false;
    last = at;
  }
  return true;
}

// ---------------------------------------------------------------- validation_split

TEST(SplitValidation, KerasSizesDeterministicDisjoint) {
  const Dataset d = make_dataset({50, 40, 13});  // n = 103
  const TrainValSplit a = split_validation(d, 0.2, 1337);
  EXPECT_EQ(a.validation.size(), 20u);  // floor(20.6)
  EXPECT_EQ(a.train.size(), 83u);
  expect_partition(d, {&a.train, &a.validation});
  EXPECT_TRUE(disjoint(a.train, a.validation));
  EXPECT_TRUE(keeps_order(d, a.train));
  EXPECT_TRUE(keeps_order(d, a.validation));

  const TrainValSplit again = split_validation(d, 0.2, 1337);
  EXPECT_EQ(names(again.train), names(a.train));
  EXPECT_EQ(names(again.validation), names(a.validation));

  const TrainValSplit other = split_validation(d, 0.2, 1338);
  EXPECT_NE(name_set(other.validation), name_set(a.validation));
  EXPECT_EQ(other.validation.size(), 20u);
}

TEST(SplitValidation, FloorToleratesFloatingPointError) {
  // 0.29 * 100 is 28.999999999999996 in doubles; the user meant 29.
  EXPECT_EQ(split_validation(make_dataset({100}), 0.29, 1).validation.size(), 29u);
  EXPECT_EQ(split_validation(make_dataset({7, 3}), 0.5, 1).validation.size(), 5u);
  EXPECT_EQ(split_validation(make_dataset({2000}), 0.2, 1).validation.size(), 400u);
}

TEST(SplitValidation, BadFractionsAreUsageErrors) {
  const Dataset d = make_dataset({10, 10});
  for (double f : {0.0, 1.0, -0.1, 1.5, std::nan("")}) {
    EXPECT_THROW(split_validation(d, f, 1), UsageError) << f;
  }
}

TEST(SplitValidation, TooFewSamplesIsAnError) {
  try {
    split_validation(make_dataset({2, 2}), 0.2, 1);  // floor(0.8) = 0
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no validation samples"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- stratified

std::vector<int64_t> counts(const Dataset& d) { return d.class_counts(); }

TEST(SplitStratified, PerClassCountsFollowTheDocumentedRule) {
  const Dataset d = make_dataset({50, 40, 13});
  const TrainValSplit s = split_stratified(d, 0.2, 7);
  // V = round(20.6) = 21; shares 10.19, 8.16, 2.65 -> floors 10, 8, 2 (20); the
  // largest remainder (class 2, 0.65) gets the 21st.
  EXPECT_EQ(counts(s.validation), (std::vector<int64_t>{10, 8, 3}));
  EXPECT_EQ(counts(s.train), (std::vector<int64_t>{40, 32, 10}));
  expect_partition(d, {&s.train, &s.validation});
  EXPECT_TRUE(keeps_order(d, s.train));
  EXPECT_TRUE(keeps_order(d, s.validation));

  const TrainValSplit again = split_stratified(d, 0.2, 7);
  EXPECT_EQ(names(again.validation), names(s.validation));
  const TrainValSplit other = split_stratified(d, 0.2, 8);
  EXPECT_EQ(counts(other.validation), counts(s.validation));
  EXPECT_NE(name_set(other.validation), name_set(s.validation));
}

TEST(SplitStratified, ProportionsHoldOnTenBalancedClasses) {
  const Dataset d = make_dataset(std::vector<int>(10, 100));
  const TrainValSplit s = split_stratified(d, 0.25, 3);
  EXPECT_EQ(counts(s.validation), std::vector<int64_t>(10, 25));
  EXPECT_EQ(counts(s.train), std::vector<int64_t>(10, 75));
}

TEST(SplitStratified, SmallClassesAppearOnBothSides) {
  // V = round(10.2) = 10; class 1's share is 0.2 but it has 2 samples: one each side.
  const TrainValSplit s = split_stratified(make_dataset({100, 2}), 0.1, 1);
  EXPECT_EQ(counts(s.validation), (std::vector<int64_t>{9, 1}));
  // A lone sample trains; the total still holds: V = round(5.5) = 6.
  const TrainValSplit lone = split_stratified(make_dataset({10, 1}), 0.5, 1);
  EXPECT_EQ(counts(lone.validation), (std::vector<int64_t>{6, 0}));
}

TEST(SplitStratified, TotalWinsWhenClassesCannotAllBeOnBothSides) {
  // Five classes of 2, V = round(2) = 2: only two classes can have a validation sample.
  const Dataset d = make_dataset({2, 2, 2, 2, 2});
  const TrainValSplit s = split_stratified(d, 0.2, 5);
  EXPECT_EQ(s.validation.size(), 2u);
  EXPECT_EQ(s.train.size(), 8u);
  expect_partition(d, {&s.train, &s.validation});
}

TEST(SplitStratified, ErrorsOnBadInput) {
  EXPECT_THROW(split_stratified(make_dataset({5, 5}), 0.0, 1), UsageError);
  EXPECT_THROW(split_stratified(make_dataset({5, 5}), 1.0, 1), UsageError);
  EXPECT_THROW(split_stratified(make_dataset({1}), 0.5, 1), Error);
}

TEST(SplitStratified, ThreeWayPartition) {
  const Dataset d = make_dataset(std::vector<int>(10, 60));  // the 10-class animals case, scaled down
  const TrainValTestSplit s = split_stratified(d, 0.15, 0.15, 42);
  EXPECT_EQ(counts(s.test), std::vector<int64_t>(10, 9));
  EXPECT_EQ(counts(s.validation), std::vector<int64_t>(10, 9));
  EXPECT_EQ(counts(s.train), std::vector<int64_t>(10, 42));
  expect_partition(d, {&s.train, &s.validation, &s.test});
  const TrainValTestSplit again = split_stratified(d, 0.15, 0.15, 42);
  EXPECT_EQ(names(again.test), names(s.test));
  EXPECT_EQ(names(again.validation), names(s.validation));
  EXPECT_THROW(split_stratified(d, 0.5, 0.5, 1), UsageError);
  EXPECT_THROW(split_stratified(d, -0.1, 0.2, 1), UsageError);

  const TrainValTestSplit no_test = split_stratified(d, 0.2, 0.0, 42);
  EXPECT_TRUE(no_test.test.empty());
  EXPECT_EQ(no_test.validation.size(), 120u);
}

// ---------------------------------------------------------------- split specs

TEST(SplitSpecParse, ValidSpecs) {
  SplitSpec s = parse_split_spec("train");
  EXPECT_EQ(s.split, "train");
  EXPECT_TRUE(s.whole());

  s = parse_split_spec("train[:40%]");
  EXPECT_EQ(s.split, "train");
  EXPECT_FALSE(s.from);
  ASSERT_TRUE(s.to);
  EXPECT_EQ(*s.to, 40);
  EXPECT_TRUE(s.percent);

  s = parse_split_spec(" train[40%:50%] ");
  EXPECT_EQ(*s.from, 40);
  EXPECT_EQ(*s.to, 50);
  EXPECT_EQ(s.text, "train[40%:50%]");

  s = parse_split_spec("train[-10%:]");
  EXPECT_EQ(*s.from, -10);
  EXPECT_FALSE(s.to);
  EXPECT_TRUE(s.percent);

  s = parse_split_spec("train[:1000]");
  EXPECT_EQ(*s.to, 1000);
  EXPECT_FALSE(s.percent);

  s = parse_split_spec("training_set[1_000:2_000]");
  EXPECT_EQ(s.split, "training_set");
  EXPECT_EQ(*s.from, 1000);
  EXPECT_EQ(*s.to, 2000);

  s = parse_split_spec("test-2[:12.5%]");
  EXPECT_EQ(s.split, "test-2");
  EXPECT_DOUBLE_EQ(*s.to, 12.5);

  s = parse_split_spec("train[:]");
  EXPECT_TRUE(s.whole());
  s = parse_split_spec("train[-20%:-10%]");
  EXPECT_EQ(*s.from, -20);
  EXPECT_EQ(*s.to, -10);

  const auto parts = parse_split_union("train[:10%] + validation");
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].split, "train");
  EXPECT_EQ(*parts[0].to, 10);
  EXPECT_EQ(parts[1].split, "validation");
  EXPECT_TRUE(parts[1].whole());
}

TEST(SplitSpecParse, BadSpecsAreUsageErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train[60%:40%]", "ends before it starts"},
      {"train[-10%:-20%]", "ends before it starts"},
      {"train[:140%]", "within -100% and 100%"},
      {"train[-101%:]", "within -100% and 100%"},
      {"bogus[", "expected NAME or NAME[FROM:TO]"},
      {"train[:10%", "expected NAME or NAME[FROM:TO]"},
      {"", "empty"},
      {"[:10%]", "split name"},
      {"train[10:50%]", "both bounds"},
      {"train[:1.5]", "whole number"},
      {"train[a:b]", "not a number"},
      {"train[10%]", "FROM:TO"},
      {"train[1:2:3]", "FROM:TO"},
      {"train[%:]", "not a number"},
      {"train[:10%]x", "expected NAME or NAME[FROM:TO]"},
  };
  for (const auto& [text, message] : cases) {
    try {
      parse_split_spec(text);
      ADD_FAILURE() << "'" << text << "' parsed";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << text << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("'" + text + "'"), std::string::npos) << e.what();
      EXPECT_FALSE(e.hint().empty());
    }
  }
  EXPECT_THROW(parse_split_union("train[:10%]+"), UsageError);
  EXPECT_THROW(parse_split_union("+train"), UsageError);
  EXPECT_THROW(parse_split_spec("train+validation"), UsageError);
}

TEST(SplitSpecRange, TfdsClosestRounding) {
  auto range = [](const std::string& spec, size_t n) {
    const SliceRange r = slice_range(parse_split_spec(spec), n);
    return std::make_pair(r.begin, r.end);
  };
  // 8999 samples: 40% -> 3599.6 -> 3600; 50% -> 4499.5 -> 4500 (to even); 60% -> 5399.4 -> 5399.
  EXPECT_EQ(range("train[:40%]", 8999), std::make_pair(size_t{0}, size_t{3600}));
  EXPECT_EQ(range("train[40%:50%]", 8999), std::make_pair(size_t{3600}, size_t{4500}));
  EXPECT_EQ(range("train[50%:60%]", 8999), std::make_pair(size_t{4500}, size_t{5399}));
  // Halves go to the even neighbour, as Python's round(): 2.5 -> 2, 3.5 -> 4.
  EXPECT_EQ(range("train[25%:35%]", 10), std::make_pair(size_t{2}, size_t{4}));
  EXPECT_EQ(range("train[-10%:]", 100), std::make_pair(size_t{90}, size_t{100}));
  EXPECT_EQ(range("train[-5:]", 100), std::make_pair(size_t{95}, size_t{100}));
  EXPECT_EQ(range("train[:-5]", 100), std::make_pair(size_t{0}, size_t{95}));
  EXPECT_EQ(range("train[:1000]", 500), std::make_pair(size_t{0}, size_t{500}));  // clamped, as TFDS
  EXPECT_EQ(range("train[-1000:]", 500), std::make_pair(size_t{0}, size_t{500}));
  EXPECT_EQ(range("train", 7), std::make_pair(size_t{0}, size_t{7}));
  EXPECT_THROW(range("train[-10:5]", 100), UsageError);  // 90 > 5 once resolved
}

using testing::touch;

TEST(ResolveSplit, NamedSplitFoldersShareLabels) {
  const fs::path root = scratch_dir("resolve_named");
  for (int i = 0; i < 10; ++i) {
    touch(root / "train" / "a" / (std::to_string(i) + ".jpg"));
    touch(root / "train" / "b" / (std::to_string(i) + ".jpg"));
  }
  touch(root / "validation" / "a" / "v.jpg");
  touch(root / "validation" / "b" / "v.jpg");
  touch(root / "test" / "b" / "t.jpg");  // only class b: still label 1
  touch(root / "README.txt");

  const auto splits = list_splits(root);
  ASSERT_EQ(splits.size(), 3u);
  EXPECT_EQ(splits[0].name, "test");
  EXPECT_EQ(splits[2].folder, root / "validation");

  const Dataset test = resolve_split(root, "test");
  EXPECT_EQ(test.class_names, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(test.size(), 1u);
  EXPECT_EQ(test.samples[0].label, 1);

  const Dataset half = resolve_split(root, "train[:50%]");
  const Dataset rest = resolve_split(root, "train[50%:]");
  EXPECT_EQ(half.size(), 10u);
  EXPECT_EQ(rest.size(), 10u);
  EXPECT_TRUE(disjoint(half, rest));
  EXPECT_TRUE(std::is_sorted(half.samples.begin(), half.samples.end(),
                             [](const Sample& x, const Sample& y) { return x.label < y.label; }));
  EXPECT_EQ(names(resolve_split(root, "train[:50%]")), names(half));  // same every call

  const Dataset both = resolve_split(root, "train[:25%]+validation");
  EXPECT_EQ(both.size(), 5u + 2u);
  EXPECT_NE(both.source.find("train[:25%]+validation"), std::string::npos);

  try {
    resolve_split(root, "bogus[:10%]");
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown split 'bogus'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test, train, validation"), std::string::npos) << e.what();
  }
  const Dataset all = resolve_split(root, "all");
  EXPECT_EQ(all.size(), 1u + 20u + 2u);
  EXPECT_EQ(all.samples[0].path, root / "test" / "b" / "t.jpg");  // splits in name order
  EXPECT_THROW(resolve_split(root, "all[:10%]"), UsageError);
  EXPECT_THROW(resolve_split(root, "train[40%:40%]"), Error);  // selects nothing
  EXPECT_THROW(resolve_split(root, "train[60%:40%]"), UsageError);
}

TEST(ResolveSplit, ClassFolderRootIsTheTrainSplit) {
  const fs::path root = scratch_dir("resolve_classes");
  for (int i = 0; i < 4; ++i) {
    touch(root / "cats" / (std::to_string(i) + ".jpg"));
    touch(root / "dogs" / (std::to_string(i) + ".jpg"));
  }
  const auto splits = list_splits(root);
  ASSERT_EQ(splits.size(), 1u);
  EXPECT_EQ(splits[0].name, "train");
  EXPECT_EQ(resolve_split(root, "train").size(), 8u);
  EXPECT_EQ(resolve_split(root, "train[:2]").size(), 2u);
  try {
    resolve_split(root, "validation");
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("the split(s) train"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_split(root / "missing", "train"), Error);
}

// ---------------------------------------------------------------- real data

TEST(SharedData, PetImagesCounts) {
  TABBY_REQUIRE_SHARED(shared);
  const Dataset d = scan_folder(shared / "datasets" / "pet_images" / "PetImages");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"Cat", "Dog"}));
  EXPECT_EQ(d.class_counts(), (std::vector<int64_t>{4499, 4500}));
}

TEST(SharedData, PetImagesTfdsSlicesAreDisjointAndBalanced) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path root = shared / "datasets" / "pet_images" / "PetImages";
  const Dataset train = resolve_split(root, "train[:40%]");
  const Dataset validation = resolve_split(root, "train[40%:50%]");
  const Dataset test = resolve_split(root, "train[50%:60%]");
  // TFDS "closest" rounding over 8,999 files (see TfdsClosestRounding).
  EXPECT_EQ(train.size(), 3600u);
  EXPECT_EQ(validation.size(), 900u);
  EXPECT_EQ(test.size(), 899u);
  EXPECT_TRUE(disjoint(train, validation));
  EXPECT_TRUE(disjoint(train, test));
  EXPECT_TRUE(disjoint(validation, test));
  for (const Dataset* part : {&train, &validation, &test}) {
    EXPECT_EQ(part->class_names, (std::vector<std::string>{"Cat", "Dog"}));
    const double cat_share = static_cast<double>(part->class_counts()[0]) / static_cast<double>(part->size());
    EXPECT_GT(cat_share, 0.45) << part->source;
    EXPECT_LT(cat_share, 0.55) << part->source;
  }
  EXPECT_EQ(names(resolve_split(root, "train[:40%]")), names(train));
}

TEST(SharedData, CatsAndDogsFilteredSplits) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path root = shared / "datasets" / "cats_and_dogs_filtered";
  const Dataset validation = resolve_split(root, "validation");
  EXPECT_EQ(validation.size(), 1000u);
  EXPECT_EQ(validation.class_names, (std::vector<std::string>{"cats", "dogs"}));
  EXPECT_EQ(validation.class_counts(), (std::vector<int64_t>{500, 500}));
  EXPECT_EQ(resolve_split(root, "train[:10%]+validation").size(), 1200u);
  try {
    resolve_split(root, "test");
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("train, validation"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tabby
