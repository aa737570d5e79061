// Checksums, downloads and pretrained-weight resolution. Downloads are tested
// against an HTTP server the test runs on 127.0.0.1: success with
// the checksum verified, checksum mismatch (nothing left behind), HTTP 404,
// redirects, and resolve_pretrained_weights through $TABBY_WEIGHTS_DIR, the
// cache, $TABBY_WEIGHTS_BASE_URL and $TABBY_OFFLINE.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <thread>


#include "support/digest.h"
#include "support/local_server.h"
#include "support/test_support.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/download.h"
#include "tabby/weights/pretrained.h"
#include "tabby/weights/sha256.h"

namespace tabby {
namespace {

using testing::LocalServer;
using testing::ScopedEnv;
using testing::sha256_hex;

namespace fs = std::filesystem;

std::string error_and_hint_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()) + " | hint: " + e.hint();
  }
  return "<no error>";
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

std::string pattern_bytes(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = 2166136261u ^ static_cast<uint32_t>(seed);
  for (char& c : s) {
    x = x * 16777619u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PiecesGiveTheDigestOfTheWhole) {
  Sha256 pieces;
  const std::string data = pattern_bytes(5000, 1);
  for (size_t i = 0; i < data.size(); i += 77) pieces.update(std::string_view(data).substr(i, 77));
  EXPECT_EQ(pieces.hex_digest(), sha256_hex(data));
}

TEST(Sha256, FilesAndPrefixes) {
  const fs::path dir = testing::scratch_dir("sha256_file");
  const std::string data = pattern_bytes(3 << 20, 9);
  testing::write_bytes(dir / "f.bin", data);
  const std::string digest = sha256_file_hex(dir / "f.bin");
  EXPECT_EQ(digest, sha256_hex(data));
  EXPECT_TRUE(sha256_matches(digest, digest));
  EXPECT_TRUE(sha256_matches(digest, digest.substr(0, 8)));
  std::string upper = digest.substr(0, 10);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(sha256_matches(digest, upper));
  EXPECT_FALSE(sha256_matches(digest, digest.substr(0, 7)));  // too short to mean anything
  EXPECT_FALSE(sha256_matches(digest, "00000000"));
  EXPECT_THROW(sha256_file_hex(dir / "missing"), Error);
}

TEST(Registry, PinsTorchvisionImageNetFiles) {
  const std::vector<std::string> expected = {
      "mobilenet_v2",    "mobilenet_v3_large", "mobilenet_v3_small", "resnet18",      "resnet50", "squeezenet1_1",
      "vgg16",           "efficientnet_b0",    "efficientnet_b3",    "efficientnet_v2_s", "convnext_tiny",
      "vit_b_16"};
  for (const std::string& arch : expected) {
    SCOPED_TRACE(arch);
    const PretrainedEntry* e = find_pretrained(arch);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->arch, arch);
    EXPECT_EQ(e->url, "https://download.pytorch.org/models/" + e->file_name);
    ASSERT_EQ(e->sha256.size(), 64u);
    for (char c : e->sha256) EXPECT_TRUE(std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(c));
    // torchvision's names end in -<first hex digits of the SHA-256>.pth.
    const size_t dash = e->file_name.rfind('-'), dot = e->file_name.rfind(".pth");
    ASSERT_NE(dash, std::string::npos);
    ASSERT_NE(dot, std::string::npos);
    const std::string prefix = e->file_name.substr(dash + 1, dot - dash - 1);
    EXPECT_GE(prefix.size(), 8u);
    EXPECT_TRUE(sha256_matches(e->sha256, prefix)) << e->file_name;
  }
  const auto archs = pretrained_archs();
  for (const std::string& arch : expected) EXPECT_NE(std::find(archs.begin(), archs.end(), arch), archs.end());
  EXPECT_EQ(find_pretrained("no_such_net"), nullptr);
  // Files whose full digest nobody recorded are checked as torch.hub checks
  // them: the 8 hex digits their names end in.
  for (const char* arch : {"efficientnet_b1", "efficientnet_b2", "regnet_y_400mf"}) {
    const PretrainedEntry* e = find_pretrained(arch);
    ASSERT_NE(e, nullptr) << arch;
    EXPECT_EQ(e->sha256.size(), 8u);
    EXPECT_NE(e->file_name.find("-" + e->sha256 + ".pth"), std::string::npos) << e->file_name;
  }
}

TEST(Registry, BaseUrlReplacesHostAndFolder) {
  const PretrainedEntry* e = find_pretrained("resnet18");
  ASSERT_NE(e, nullptr);
  {
    ScopedEnv base("TABBY_WEIGHTS_BASE_URL", std::nullopt);
    EXPECT_EQ(pretrained_download_url(*e), e->url);
  }
  ScopedEnv base("TABBY_WEIGHTS_BASE_URL", "http://mirror.example/torch/");
  EXPECT_EQ(pretrained_download_url(*e), "http://mirror.example/torch/resnet18-f37072fd.pth");
}

TEST(Resolve, LocalFilesNeedNoNetwork) {
  const fs::path dir = testing::scratch_dir("resolve_local");
  ScopedEnv weights("TABBY_WEIGHTS_DIR", (dir / "weights").string());
  ScopedEnv cache("TABBY_CACHE_DIR", (dir / "cache").string());
  ScopedEnv offline("TABBY_OFFLINE", "1");
  register_pretrained({"tabbylocalnet", "tabbylocalnet-12345678.pth", "http://127.0.0.1:1/x.pth", std::string(64, '1')});

  // The cache holds torchvision's name; the weights folder, searched first, a safetensors copy.
  testing::write_bytes(dir / "cache" / "weights" / "tabbylocalnet-12345678.pth", "cached");
  EXPECT_EQ(resolve_pretrained_weights("tabbylocalnet"), dir / "cache" / "weights" / "tabbylocalnet-12345678.pth");
  testing::write_bytes(dir / "weights" / "tabbylocalnet_imagenet.pth", "pth");
  EXPECT_EQ(resolve_pretrained_weights("tabbylocalnet"), dir / "weights" / "tabbylocalnet_imagenet.pth");
  testing::write_bytes(dir / "weights" / "tabbylocalnet_imagenet.safetensors", "st");
  EXPECT_EQ(resolve_pretrained_weights("tabbylocalnet"), dir / "weights" / "tabbylocalnet_imagenet.safetensors");
}

TEST(Resolve, SharedWeightsAreFound) {
  TABBY_REQUIRE_SHARED(shared);
  const fs::path dir = testing::scratch_dir("resolve_shared");
  ScopedEnv env_shared("TABBY_SHARED", shared.string());
  ScopedEnv weights("TABBY_WEIGHTS_DIR", std::nullopt);
  ScopedEnv cache("TABBY_CACHE_DIR", (dir / "cache").string());
  ScopedEnv offline("TABBY_OFFLINE", "1");
  const fs::path found = resolve_pretrained_weights("squeezenet1_1");
  EXPECT_EQ(found.filename(), "squeezenet1_1_imagenet.safetensors");
  EXPECT_TRUE(fs::equivalent(found.parent_path(), shared / "weights"));
}

TEST(Resolve, OfflineAndUnknownAreClearErrors) {
  const fs::path dir = testing::scratch_dir("resolve_offline");
  ScopedEnv weights("TABBY_WEIGHTS_DIR", (dir / "weights").string());
  ScopedEnv cache("TABBY_CACHE_DIR", (dir / "cache").string());
  ScopedEnv offline("TABBY_OFFLINE", "1");
  register_pretrained({"tabbyofflinenet", "tabbyofflinenet-abcdef12.pth", "http://127.0.0.1:1/x.pth", "abcdef12"});
  std::string msg = error_and_hint_of([] { resolve_pretrained_weights("tabbyofflinenet"); });
  EXPECT_NE(msg.find("TABBY_OFFLINE"), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir / "weights").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir / "cache" / "weights").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("tabbyofflinenet-abcdef12.pth"), std::string::npos) << msg;
  EXPECT_TRUE(files_in(dir / "cache" / "weights").empty());

  msg = error_and_hint_of([] { resolve_pretrained_weights("no_such_net"); });
  EXPECT_NE(msg.find("'no_such_net'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet18"), std::string::npos) << msg;  // the hint lists known backbones
  EXPECT_NE(error_and_hint_of([] { resolve_pretrained_weights("../etc/passwd"); }).find("not a backbone name"),
            std::string::npos);
}

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!download_supported()) GTEST_SKIP() << "built without libcurl";
  }
  // A proxy configured on the machine must not intercept the local server.
  ScopedEnv no_proxy_{"no_proxy", std::string("127.0.0.1,localhost")};
  ScopedEnv no_proxy_upper_{"NO_PROXY", std::string("127.0.0.1,localhost")};
};

TEST_F(DownloadTest, SuccessVerifiesTheChecksum) {
  const std::string small = pattern_bytes(1000, 1), big = pattern_bytes(3 << 20, 2);
  LocalServer server({{"small.bin", small}, {"big.bin", big}});
  ASSERT_TRUE(server.ok());
  const fs::path dir = testing::scratch_dir("download_ok");

  download_file(server.url("/models/small.bin"), dir / "sub" / "small.bin", sha256_hex(small));
  EXPECT_EQ(read_file(dir / "sub" / "small.bin"), small);
  EXPECT_EQ(files_in(dir / "sub"), std::vector<std::string>{"small.bin"});  // no temporary left

  // Big files report progress on stderr; a digest prefix is accepted.
  ::testing::internal::CaptureStderr();
  download_file(server.url("/models/big.bin"), dir / "big.bin", sha256_hex(big).substr(0, 8));
  const std::string progress = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(read_file(dir / "big.bin"), big);
  EXPECT_NE(progress.find("downloading big.bin"), std::string::npos) << progress;
  EXPECT_NE(progress.find("100%"), std::string::npos) << progress;

  // Redirects are followed; no checksum means none is checked.
  download_file(server.url("/redirect/small.bin"), dir / "redirected.bin", "");
  EXPECT_EQ(read_file(dir / "redirected.bin"), small);
}

TEST_F(DownloadTest, ChecksumMismatchLeavesNothing) {
  const std::string data = pattern_bytes(5000, 3);
  LocalServer server({{"w.pth", data}});
  ASSERT_TRUE(server.ok());
  const fs::path dir = testing::scratch_dir("download_mismatch");
  const std::string wrong = sha256_hex("something else");
  const std::string msg = error_and_hint_of([&] { download_file(server.url("/models/w.pth"), dir / "w.pth", wrong); });
  EXPECT_NE(msg.find("SHA-256 is " + sha256_hex(data)), std::string::npos) << msg;
  EXPECT_NE(msg.find(wrong), std::string::npos) << msg;
  EXPECT_TRUE(files_in(dir).empty());
  // An existing good file is not replaced by a bad download.
  testing::write_bytes(dir / "w.pth", "previous");
  EXPECT_THROW(download_file(server.url("/models/w.pth"), dir / "w.pth", wrong), Error);
  EXPECT_EQ(read_file(dir / "w.pth"), "previous");
  EXPECT_EQ(files_in(dir), std::vector<std::string>{"w.pth"});
}

TEST_F(DownloadTest, HttpAndNetworkErrors) {
  LocalServer server({});
  ASSERT_TRUE(server.ok());
  const fs::path dir = testing::scratch_dir("download_errors");
  std::string msg = error_and_hint_of([&] { download_file(server.url("/models/missing.pth"), dir / "m.pth", ""); });
  EXPECT_NE(msg.find("HTTP 404"), std::string::npos) << msg;
  EXPECT_NE(msg.find(server.url("/models/missing.pth")), std::string::npos) << msg;
  EXPECT_NE(msg.find((dir / "m.pth").string()), std::string::npos) << msg;  // the hint: where to put it by hand
  // Nothing listens on port 1.
  msg = error_and_hint_of([&] { download_file("http://127.0.0.1:1/x.pth", dir / "x.pth", ""); });
  EXPECT_NE(msg.find("cannot download"), std::string::npos) << msg;
  // Only http(s).
  EXPECT_THROW(download_file("file:///etc/passwd", dir / "p", ""), Error);
  EXPECT_THROW(download_file(server.url("/models/x"), dir / "x", "not-a-digest"), Error);
  EXPECT_TRUE(files_in(dir).empty());
}

TEST_F(DownloadTest, ResolveDownloadsIntoTheCacheOnce) {
  const std::string good = pattern_bytes(20000, 4);
  const std::string good_sha = sha256_hex(good);
  const std::string name = "tabbytestnet-" + good_sha.substr(0, 8) + ".pth";
  LocalServer server({{name, good}, {"tabbybadnet-00000000.pth", good}});
  ASSERT_TRUE(server.ok());
  const fs::path dir = testing::scratch_dir("resolve_download");
  ScopedEnv weights("TABBY_WEIGHTS_DIR", (dir / "weights").string());
  ScopedEnv cache("TABBY_CACHE_DIR", (dir / "cache").string());
  ScopedEnv offline("TABBY_OFFLINE", std::nullopt);
  ScopedEnv base("TABBY_WEIGHTS_BASE_URL", server.url("/models"));
  register_pretrained({"tabbytestnet", name, "https://download.invalid/" + name, good_sha});

  const fs::path got = resolve_pretrained_weights("tabbytestnet");
  EXPECT_EQ(got, dir / "cache" / "weights" / name);
  EXPECT_EQ(read_file(got), good);
  EXPECT_EQ(server.requests(), 1);
  EXPECT_EQ(resolve_pretrained_weights("tabbytestnet"), got);
  EXPECT_EQ(server.requests(), 1);  // found in the cache the second time

  // A registry checksum that does not match: an error, and nothing in the cache.
  register_pretrained({"tabbybadnet", "tabbybadnet-00000000.pth", "https://download.invalid/x", std::string(64, '0')});
  const std::string msg = error_and_hint_of([] { resolve_pretrained_weights("tabbybadnet"); });
  EXPECT_NE(msg.find("SHA-256"), std::string::npos) << msg;
  EXPECT_EQ(files_in(dir / "cache" / "weights"), std::vector<std::string>{name});

  // Without the mirror setting the entry's own URL is used.
  ScopedEnv no_base("TABBY_WEIGHTS_BASE_URL", std::nullopt);
  register_pretrained({"tabbyurlnet", "tabbyurlnet.pth", server.url("/models/" + name), good_sha});
  EXPECT_EQ(read_file(resolve_pretrained_weights("tabbyurlnet")), good);
}

TEST(DownloadSupport, WithoutCurlTheErrorSaysWhereToPutTheFile) {
  if (download_supported()) GTEST_SKIP() << "this build can download";
  const std::string msg = error_and_hint_of([] { download_file("https://example.com/x.pth", "/tmp/x.pth", ""); });
  EXPECT_NE(msg.find("built without download support"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/tmp/x.pth"), std::string::npos) << msg;
}

}  // namespace
}  // namespace tabby
