// The dataset download path a real user without ../shared takes: fetch a zip
// from a URL into the cache (here from a server the test runs on 127.0.0.1),
// check its size and recorded SHA-256, unpack it safely, and reuse the cache.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>

#include "support/local_server.h"
#include "support/test_support.h"
#include "tabby/api/remote_dataset.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {
namespace {

using testing::LocalServer;
using testing::ScopedEnv;
namespace fs = std::filesystem;

// Builds a zip with Python's zipfile (an independent writer); `entries` maps
// archive names to contents.
std::string make_zip(const fs::path& dir, const std::map<std::string, std::string>& entries) {
  fs::create_directories(dir);
  std::string script = "import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED)\n";
  int i = 0;
  for (const auto& [name, content] : entries) {
    const fs::path src = dir / ("entry" + std::to_string(i++));
    testing::write_bytes(src, content);
    script += "z.write(" + testing::shell_quote(src.string()) + ", " + testing::shell_quote(name) + ")\n";
  }
  script += "z.close()\n";
  testing::write_bytes(dir / "make.py", script);
  const fs::path zip = dir / "archive.zip";
  const auto r = testing::run_command(std::string(std::getenv("TABBY_PYTHON")) + " " +
                                      testing::shell_quote((dir / "make.py").string()) + " " +
                                      testing::shell_quote(zip.string()));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return read_file(zip);
}

const std::map<std::string, std::string> kTinyPets = {
    {"tiny_pets/train/cats/a.jpg", "not really a jpeg, only bytes to unpack"},
    {"tiny_pets/train/dogs/b.jpg", std::string(5000, 'd')},
    {"tiny_pets/validation/cats/c.jpg", "c"},
    {"tiny_pets/validation/dogs/d.jpg", "d"},
};

RemoteDataset tiny_spec(const LocalServer& server, size_t size) {
  RemoteDataset spec;
  spec.name = "tiny_pets";
  spec.url = server.url("/models/tiny_pets.zip");
  spec.size_bytes = size;
  spec.required_dirs = {"train/cats", "train/dogs", "validation/cats", "validation/dogs"};
  return spec;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

class RemoteDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::scratch_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    cache_.emplace("TABBY_CACHE_DIR", (dir_ / "cache").string());
  }
  fs::path dir_;
  std::optional<ScopedEnv> cache_;
  ScopedEnv data_dir_{"TABBY_DATA_DIR", std::nullopt};
  ScopedEnv offline_{"TABBY_OFFLINE", std::nullopt};
  ScopedEnv mirror_{"TABBY_DATASETS_BASE_URL", std::nullopt};
  ScopedEnv no_proxy_{"no_proxy", std::string("127.0.0.1,localhost")};
  ScopedEnv no_proxy_upper_{"NO_PROXY", std::string("127.0.0.1,localhost")};
};

TEST(RemoteDatasetSpec, CatsAndDogsFilteredIsGooglesArchive) {
  const RemoteDataset& spec = cats_and_dogs_filtered();
  EXPECT_EQ(spec.url, "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip");
  EXPECT_EQ(spec.size_bytes, 68606236u);
  EXPECT_EQ(spec.name, "cats_and_dogs_filtered");
}

TEST_F(RemoteDatasetTest, DownloadsOnceUnpacksAndReusesTheCache) {
  const std::string zip = make_zip(dir_ / "src", kTinyPets);
  LocalServer server({{"tiny_pets.zip", zip}});
  ASSERT_TRUE(server.ok());
  const RemoteDataset spec = tiny_spec(server, zip.size());

  const fs::path got = find_or_fetch_dataset(spec);
  EXPECT_EQ(got, dir_ / "cache" / "datasets" / "tiny_pets");
  EXPECT_EQ(read_file(got / "train" / "dogs" / "b.jpg"), std::string(5000, 'd'));
  EXPECT_TRUE(fs::is_regular_file(got / "validation" / "cats" / "c.jpg"));
  EXPECT_TRUE(fs::is_regular_file(dir_ / "cache" / "datasets" / "tiny_pets.zip.sha256"));
  EXPECT_EQ(server.requests(), 1);

  EXPECT_EQ(find_or_fetch_dataset(spec), got);
  EXPECT_EQ(server.requests(), 1) << "the unpacked copy is reused";

  // Unpacked folder lost: the cached archive is unpacked again, no download.
  fs::remove_all(got);
  EXPECT_EQ(find_or_fetch_dataset(spec), got);
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(RemoteDatasetTest, AMirrorReplacesTheHost) {
  const std::string zip = make_zip(dir_ / "src", kTinyPets);
  LocalServer server({{"tiny_pets.zip", zip}});
  ASSERT_TRUE(server.ok());
  RemoteDataset spec = tiny_spec(server, zip.size());
  spec.url = "https://unreachable.invalid/some/folder/tiny_pets.zip";
  ScopedEnv mirror("TABBY_DATASETS_BASE_URL", server.url("/models/"));
  EXPECT_TRUE(fs::is_directory(find_or_fetch_dataset(spec) / "train" / "cats"));
  EXPECT_EQ(server.requests(), 1);
}

TEST_F(RemoteDatasetTest, AnArchiveOfTheWrongSizeIsRemovedWithAClearError) {
  const std::string zip = make_zip(dir_ / "src", kTinyPets);
  LocalServer server({{"tiny_pets.zip", zip}});
  const RemoteDataset spec = tiny_spec(server, zip.size() + 1);
  const std::string msg = error_of([&] { find_or_fetch_dataset(spec); });
  EXPECT_NE(msg.find("expected " + std::to_string(zip.size() + 1)), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "datasets" / "tiny_pets.zip"));
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "datasets" / "tiny_pets"));
}

TEST_F(RemoteDatasetTest, AnArchiveThatChangedSinceTheFirstDownloadIsRefused) {
  const std::string zip = make_zip(dir_ / "src", kTinyPets);
  LocalServer server({{"tiny_pets.zip", zip}});
  const RemoteDataset spec = tiny_spec(server, zip.size());
  const fs::path got = find_or_fetch_dataset(spec);
  fs::remove_all(got);
  // Same size, one byte changed: only the recorded SHA-256 notices.
  std::string changed = zip;
  changed[changed.size() / 2] ^= 0x5a;
  testing::write_bytes(dir_ / "cache" / "datasets" / "tiny_pets.zip", changed);
  const std::string msg = error_of([&] { find_or_fetch_dataset(spec); });
  EXPECT_NE(msg.find("SHA-256"), std::string::npos) << msg;
}

TEST_F(RemoteDatasetTest, EntriesEscapingTheFolderAreRefused) {
  std::map<std::string, std::string> evil = kTinyPets;
  evil["tiny_pets/../../escaped.txt"] = "gotcha";
  const std::string zip = make_zip(dir_ / "src", evil);
  LocalServer server({{"tiny_pets.zip", zip}});
  const RemoteDataset spec = tiny_spec(server, zip.size());
  const std::string msg = error_of([&] { find_or_fetch_dataset(spec); });
  EXPECT_NE(msg, "<no error>");
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "escaped.txt"));
  EXPECT_FALSE(fs::exists(dir_ / "escaped.txt"));
}

TEST_F(RemoteDatasetTest, OfflineWithNoCopyNamesThePlacesSearched) {
  ScopedEnv offline("TABBY_OFFLINE", std::string("1"));
  LocalServer server({});
  const RemoteDataset spec = tiny_spec(server, 10);
  const std::string msg = error_of([&] { find_or_fetch_dataset(spec); });
  EXPECT_NE(msg.find("TABBY_OFFLINE"), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir_ / "cache" / "datasets" / "tiny_pets").string()), std::string::npos) << msg;
  EXPECT_EQ(server.requests(), 0);
}

TEST_F(RemoteDatasetTest, AMissingFileOnTheServerIsAClearError) {
  LocalServer server({});
  const RemoteDataset spec = tiny_spec(server, 10);
  const std::string msg = error_of([&] { find_or_fetch_dataset(spec); });
  EXPECT_NE(msg.find("404"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "cache" / "datasets" / "tiny_pets.zip"));
}

}  // namespace
}  // namespace tabby
