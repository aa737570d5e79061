// Folder datasets: class order, file order, recursion, what is skipped, the
// errors a user sees, symlink loops and byte-string file names; plus the small
// dataset helpers and the seeded permutation everything random builds on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "tabby/dataset/dataset.h"
#include "tabby/dataset/folder.h"
#include "tabby/dataset/shuffle.h"
#include "tabby/util/error.h"
#include "support/test_support.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;
using testing::write_bytes;

using testing::touch;

std::vector<std::string> relative_paths(const Dataset& d, const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& s : d.samples) out.push_back(s.path.lexically_relative(root).string());
  return out;
}

// Runs `f`, expecting a tabby::Error whose message contains every one of `parts`.
template <typename E = Error, typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error thrown";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "'" << what << "' lacks '" << p << "'";
  }
}

TEST(ScanFolder, ClassesSortedFilesInKerasWalkOrder) {
  const fs::path root = scratch_dir("scan_order");
  touch(root / "dogs" / "b.jpg");
  touch(root / "dogs" / "a.JPG");
  touch(root / "dogs" / "B.jpg");
  touch(root / "dogs" / "c.jpeg");
  touch(root / "dogs" / "sub" / "deeper" / "z.png");
  touch(root / "dogs" / "sub" / "a.gif");
  touch(root / "dogs" / ".hidden.jpg");
  touch(root / "dogs" / ".cache" / "x.jpg");
  touch(root / "dogs" / "notes.txt");
  touch(root / "dogs" / "noext");
  touch(root / "cats" / "2.bmp");
  touch(root / "cats" / "1.gif");
  touch(root / "cats" / "3.JPEG");
  touch(root / "Zebra" / "z.PNG");
  touch(root / "loose.jpg");             // directly in DIR: ignored
  touch(root / ".ipynb_checkpoints" / "x.jpg");  // hidden folder: not a class

  const Dataset d = scan_folder(root);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"Zebra", "cats", "dogs"}));  // byte order: 'Z' < 'c'
  EXPECT_EQ(relative_paths(d, root), (std::vector<std::string>{
                                         "Zebra/z.PNG", "cats/1.gif", "cats/2.bmp", "cats/3.JPEG",
                                         // folder by folder (dogs, dogs/sub, dogs/sub/deeper), names in byte order
                                         "dogs/B.jpg", "dogs/a.JPG", "dogs/b.jpg", "dogs/c.jpeg", "dogs/sub/a.gif",
                                         "dogs/sub/deeper/z.png"}));
  std::vector<int> labels;
  for (const auto& s : d.samples) labels.push_back(s.label);
  EXPECT_EQ(labels, (std::vector<int>{0, 1, 1, 1, 2, 2, 2, 2, 2, 2}));
  EXPECT_EQ(d.class_counts(), (std::vector<int64_t>{1, 3, 6}));
  EXPECT_EQ(d.source, root.string());
}

TEST(ScanFolder, CustomExtensionsAreCaseInsensitive) {
  const fs::path root = scratch_dir("scan_ext");
  touch(root / "a" / "1.PNG");
  touch(root / "a" / "2.jpg");
  touch(root / "b" / "3.png");
  FolderScanOptions options;
  options.extensions = {"png"};  // the dot is optional
  const Dataset d = scan_folder(root, options);
  EXPECT_EQ(relative_paths(d, root), (std::vector<std::string>{"a/1.PNG", "b/3.png"}));
}

TEST(ScanFolder, MissingFolderIsAClearError) {
  const fs::path root = scratch_dir("scan_missing");
  expect_error([&] { scan_folder(root / "nope"); }, {(root / "nope").string(), "does not exist"});
}

TEST(ScanFolder, FileInsteadOfFolderIsAClearError) {
  const fs::path root = scratch_dir("scan_file");
  touch(root / "file.jpg");
  expect_error([&] { scan_folder(root / "file.jpg"); }, {"file.jpg", "not a folder"});
}

TEST(ScanFolder, NoClassFoldersIsAClearError) {
  const fs::path root = scratch_dir("scan_no_classes");
  touch(root / "a.jpg");
  touch(root / "b.jpg");
  try {
    scan_folder(root);
    ADD_FAILURE() << "no error thrown";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no class sub-folders"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(root.string()), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("one sub-folder per class"), std::string::npos) << e.hint();
  }
}

TEST(ScanFolder, EmptyClassIsAClearError) {
  const fs::path root = scratch_dir("scan_empty_class");
  touch(root / "cats" / "1.jpg");
  fs::create_directories(root / "dogs" / "sub");
  touch(root / "dogs" / "readme.txt");
  touch(root / "dogs" / ".hidden.jpg");
  expect_error([&] { scan_folder(root); }, {"class 'dogs' has no images", ".jpg .jpeg .png .bmp .gif",
                                            (root / "dogs").string()});
}

TEST(ScanFolder, OneClassIsAllowed) {
  const fs::path root = scratch_dir("scan_one_class");
  touch(root / "cats" / "1.jpg");
  const Dataset d = scan_folder(root);
  EXPECT_EQ(d.class_names, std::vector<std::string>{"cats"});
  EXPECT_EQ(d.size(), 1u);
}

TEST(ScanFolder, SymlinkLoopEndsAndListsEachFileOnce) {
  const fs::path root = scratch_dir("scan_symlink_loop");
  touch(root / "cats" / "1.jpg");
  touch(root / "cats" / "inner" / "2.jpg");
  fs::create_directory_symlink("..", root / "cats" / "inner" / "up");   // loop back to cats/
  fs::create_directory_symlink(".", root / "cats" / "self");            // loop onto itself
  fs::create_symlink("selfish.jpg", root / "cats" / "selfish.jpg");      // ELOOP link
  fs::create_symlink("gone.jpg", root / "cats" / "dangling.jpg");        // broken link
  touch(root / "dogs" / "d.jpg");
  fs::create_symlink(root / "dogs" / "d.jpg", root / "cats" / "linked.jpg");  // link to a file: taken
  const Dataset d = scan_folder(root);
  EXPECT_EQ(relative_paths(d, root), (std::vector<std::string>{"cats/1.jpg", "cats/linked.jpg", "cats/inner/2.jpg",
                                                               "dogs/d.jpg"}));
}

TEST(ScanFolder, FollowSymlinksOffSkipsLinkedFolders) {
  const fs::path root = scratch_dir("scan_no_follow");
  const fs::path elsewhere = scratch_dir("scan_no_follow_target");
  touch(elsewhere / "far.jpg");
  touch(root / "cats" / "1.jpg");
  fs::create_directory_symlink(elsewhere, root / "cats" / "more");
  EXPECT_EQ(scan_folder(root).size(), 2u);
  FolderScanOptions options;
  options.follow_symlinks = false;
  EXPECT_EQ(relative_paths(scan_folder(root, options), root), std::vector<std::string>{"cats/1.jpg"});
}

TEST(ScanFolder, NonUtf8FileNamesAreListed) {
  const fs::path root = scratch_dir("scan_bytes");
  const std::string bad_name = std::string("\xff\xfe") + "caf\xe9.jpg";  // Latin-1, not UTF-8
  touch(root / "cats" / bad_name);
  touch(root / "cats" / "plain.jpg");
  const Dataset d = scan_folder(root);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.samples[0].path.filename().native(), "plain.jpg");  // 'p' (0x70) < 0xff
  EXPECT_EQ(d.samples[1].path.filename().native(), bad_name);
  EXPECT_TRUE(fs::exists(d.samples[1].path));
}

TEST(ScanFolder, UnreadableSubFolderIsNamed) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every folder";
  const fs::path root = scratch_dir("scan_unreadable");
  touch(root / "cats" / "1.jpg");
  touch(root / "cats" / "locked" / "2.jpg");
  fs::permissions(root / "cats" / "locked", fs::perms::none);
  expect_error([&] { scan_folder(root); }, {"cannot read folder", "locked"});
  fs::permissions(root / "cats" / "locked", fs::perms::owner_all);
}

TEST(ScanFolder, ClassNamesRestrictAndOrder) {
  const fs::path root = scratch_dir("scan_class_names");
  touch(root / "cats" / "c.jpg");
  touch(root / "dogs" / "d.jpg");
  touch(root / "birds" / "b.jpg");
  FolderScanOptions options;
  options.class_names = std::vector<std::string>{"dogs", "cats"};
  Dataset d = scan_folder(root, options);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"dogs", "cats"}));
  EXPECT_EQ(relative_paths(d, root), (std::vector<std::string>{"dogs/d.jpg", "cats/c.jpg"}));
  EXPECT_EQ(d.samples[0].label, 0);
  EXPECT_EQ(d.samples[1].label, 1);

  // A class from a run that this folder lacks keeps its label, with no samples.
  options.class_names = std::vector<std::string>{"cats", "horses", "dogs"};
  d = scan_folder(root, options);
  EXPECT_EQ(d.class_counts(), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(d.samples[1].label, 2);

  options.class_names = std::vector<std::string>{"cows", "horses"};
  expect_error([&] { scan_folder(root, options); }, {"none of the class names", "cows"});
  options.class_names = std::vector<std::string>{"cats", "cats"};
  expect_error<UsageError>([&] { scan_folder(root, options); }, {"'cats' is listed twice"});
  options.class_names = std::vector<std::string>{};
  expect_error<UsageError>([&] { scan_folder(root, options); }, {"empty"});
}

TEST(ListClassFolders, ListsWithoutScanning) {
  const fs::path root = scratch_dir("list_classes");
  touch(root / "b" / "x.txt");
  fs::create_directories(root / "a");
  touch(root / "file.jpg");
  EXPECT_EQ(list_class_folders(root), (std::vector<std::string>{"a", "b"}));
  expect_error([&] { list_class_folders(root / "missing"); }, {"does not exist"});
}

Dataset toy_dataset(const std::vector<int>& labels) {
  Dataset d;
  d.class_names = {"a", "b", "c"};
  d.source = "toy";
  for (size_t i = 0; i < labels.size(); ++i) d.samples.push_back({"f" + std::to_string(i), labels[i]});
  return d;
}

TEST(DatasetHelpers, SubsetKeepsOrderAndChecksRange) {
  const Dataset d = toy_dataset({0, 1, 2, 0});
  const Dataset s = subset(d, {3, 1});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.samples[0].path, "f3");
  EXPECT_EQ(s.samples[1].path, "f1");
  EXPECT_EQ(s.class_names, d.class_names);
  EXPECT_THROW(subset(d, {4}), Error);
}

TEST(DatasetHelpers, ShuffledIsASeededPermutation) {
  std::vector<int> labels(50);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 3);
  const Dataset d = toy_dataset(labels);
  const Dataset a = shuffled(d, 7), b = shuffled(d, 7), c = shuffled(d, 8);
  auto names = [](const Dataset& x) {
    std::vector<std::string> n;
    for (const auto& s : x.samples) n.push_back(s.path.string());
    return n;
  };
  EXPECT_EQ(names(a), names(b));
  EXPECT_NE(names(a), names(c));
  EXPECT_NE(names(a), names(d));
  auto sorted_a = names(a), sorted_d = names(d);
  std::sort(sorted_a.begin(), sorted_a.end());
  std::sort(sorted_d.begin(), sorted_d.end());
  EXPECT_EQ(sorted_a, sorted_d);
  EXPECT_EQ(a.class_counts(), d.class_counts());
}

TEST(SeededPermutation, IsAPermutationAndDeterministic) {
  for (size_t n : {0u, 1u, 2u, 17u, 1000u}) {
    const auto p = seeded_permutation(n, 42);
    EXPECT_EQ(p, seeded_permutation(n, 42));
    std::vector<size_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    std::vector<size_t> identity(n);
    std::iota(identity.begin(), identity.end(), size_t{0});
    EXPECT_EQ(sorted, identity);
  }
  EXPECT_NE(seeded_permutation(1000, 1), seeded_permutation(1000, 2));
}

TEST(SeededPermutation, FollowsTheDocumentedAlgorithm) {
  // mt19937_64 with seed 5489 (the standard's default) starts with
  // 14514284786278117030, 4620546740167642908. For n = 3 that draws
  // j = 14514284786278117030 % 3 = 1 for i = 2 (swap elements 2 and 1: 0 2 1),
  // then j = 4620546740167642908 % 2 = 0 for i = 1 (swap elements 1 and 0: 2 0 1).
  EXPECT_EQ(seeded_permutation(3, 5489), (std::vector<size_t>{2, 0, 1}));
  // Longer cases, from an independent Python transcription of MT19937-64 and
  // the same Fisher-Yates with threshold rejection.
  EXPECT_EQ(seeded_permutation(10, 5489), (std::vector<size_t>{4, 5, 7, 6, 3, 2, 1, 8, 9, 0}));
  EXPECT_EQ(seeded_permutation(12, 0x0123456789abcdefULL), (std::vector<size_t>{7, 8, 6, 5, 1, 4, 10, 2, 3, 11, 9, 0}));
  std::mt19937_64 g(5489);
  EXPECT_EQ(uniform_below(g, 3), 1u);
  EXPECT_EQ(uniform_below(g, 1), 0u);  // bound 1 draws nothing
  EXPECT_EQ(g(), 4620546740167642908ULL);
}

TEST(SeededPermutation, UniformBelowRejectsTheBiasedTail) {
  // With bound 2^63 + 1, 2^64 mod bound = 2^63 - 1: draws below that are rejected.
  std::mt19937_64 g(5489), reference(5489);
  const uint64_t bound = (1ULL << 63) + 1;
  const uint64_t got = uniform_below(g, bound);
  uint64_t draw;
  do draw = reference(); while (draw < (1ULL << 63) - 1);
  EXPECT_EQ(got, draw % bound);
}

}  // namespace
}  // namespace tabby
