// The string helpers the spec parsers and error messages share.
#include <gtest/gtest.h>

#include "tabby/util/text.h"

namespace tabby {
namespace {

TEST(Text, TrimRemovesOnlyTheGivenCharactersAtEitherEnd) {
  EXPECT_EQ(util::trim("  flip, rotate\t"), "flip, rotate");
  EXPECT_EQ(util::trim("\tzoom 0.1 "), "zoom 0.1");
  EXPECT_EQ(util::trim("train[:80%]\n"), "train[:80%]\n") << "spaces and tabs only unless told";
  EXPECT_EQ(util::trim("train[:80%]\r\n", " \t\r\n"), "train[:80%]");
  EXPECT_EQ(util::trim(" a  b "), "a  b") << "inner blanks stay";
  EXPECT_EQ(util::trim(""), "");
  EXPECT_EQ(util::trim(" \t \t"), "");
  EXPECT_EQ(util::trim("x"), "x");
}

TEST(Text, JoinPutsTheSeparatorBetweenItemsOnly) {
  EXPECT_EQ(util::join({"cats", "dogs", "birds"}), "cats, dogs, birds");
  EXPECT_EQ(util::join({".jpg", ".png"}, " "), ".jpg .png");
  EXPECT_EQ(util::join({"only"}), "only");
  EXPECT_EQ(util::join({}), "");
  EXPECT_EQ(util::join({"", ""}, "+"), "+");
}

}  // namespace
}  // namespace tabby
