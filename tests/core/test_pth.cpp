// .pth state dicts: fixtures written by the real torch.save (every dtype,
// strided views, legacy format, protocol 4, deflated and ZIP64 archives, nested
// checkpoints), malicious pickles that must be refused without running
// anything, hand-made hostile pickles and archives, truncation and corruption
// fuzzing, the shared SqueezeNet file, and serialize_pth read back by torch.load.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <fstream>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "support/pth_writer.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/safetensors.h"
#include "tabby/weights/sha256.h"
#include "tabby/weights/weights_file.h"
#include "tabby/weights/zip_archive.h"
#include "support/test_support.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string python() {
  const char* p = std::getenv("TABBY_PYTHON");
  return p ? p : "/usr/bin/python3";
}

fs::path source_dir() {
  if (const char* s = std::getenv("TABBY_SOURCE_DIR")) return s;
  return TABBY_SOURCE_DIR;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::string to_hex(const std::string& bytes) {
  static const char d[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

RawTensorMap expected_from_json(const fs::path& path) {
  json j = json::parse(read_file(path));
  RawTensorMap m;
  for (auto it = j.begin(); it != j.end(); ++it) {
    RawTensor t;
    t.dtype = *dtype_from_name(it.value().at("dtype").get<std::string>());
    t.shape = it.value().at("shape").get<std::vector<int64_t>>();
    t.data = from_hex(it.value().at("hex").get<std::string>());
    m[it.key()] = t;
  }
  return m;
}

json to_json(const RawTensorMap& m) {
  json j = json::object();
  for (const auto& [name, t] : m) j[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"hex", to_hex(t.data)}};
  return j;
}

void expect_same_raw(const RawTensorMap& expected, const RawTensorMap& got) {
  ASSERT_EQ(expected.size(), got.size());
  for (const auto& [name, t] : expected) {
    auto it = got.find(name);
    ASSERT_NE(it, got.end()) << "missing " << name;
    EXPECT_EQ(dtype_name(t.dtype), std::string(dtype_name(it->second.dtype))) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_EQ(to_hex(t.data), to_hex(it->second.data)) << name;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

fs::path fixture_script() { return source_dir() / "tests" / "python" / "make_pth_fixtures.py"; }

// Fixtures from tests/python/make_pth_fixtures.py. ctest runs every test in its
// own process, possibly in parallel, so the fixtures are made once into a folder
// named after the script's checksum: written under a temporary name and renamed
// into place, then reused by every later process. The malicious fixtures aim
// their payloads at that final folder, where the test looks for them.
class TorchFixtures : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto probe = testing::run_command(testing::shell_quote(python()) + " -c 'import torch'");
    if (probe.exit_code != 0) {
      skip_reason_ = "python with torch not available (" + python() + ")";
      return;
    }
    const char* tmp_root = std::getenv("TABBY_TEST_TMP");
    const fs::path base = tmp_root ? fs::path(tmp_root) : fs::temp_directory_path() / "tabby-tests";
    dir_ = base / ("pth_fixtures-" + sha256_file_hex(fixture_script()).substr(0, 16));
    if (fs::exists(dir_ / "markers.json")) return;
    const fs::path staging = base / (dir_.filename().string() + ".tmp" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(staging, ec);
    fs::create_directories(staging);
    auto r = testing::run_command(testing::shell_quote(python()) + " " + testing::shell_quote(fixture_script().string()) +
                                  " " + testing::shell_quote(staging.string()) + " " +
                                  testing::shell_quote(dir_.string()));
    if (r.exit_code != 0) {
      failure_ = "make_pth_fixtures.py failed: " + r.err;
      return;
    }
    fs::rename(staging, dir_, ec);
    if (ec) fs::remove_all(staging, ec);  // another process finished first: use its copy
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(failure_.empty()) << failure_;
  }
  static fs::path dir_;
  static std::string skip_reason_, failure_;
};
fs::path TorchFixtures::dir_;
std::string TorchFixtures::skip_reason_, TorchFixtures::failure_;

TEST_F(TorchFixtures, BenignFilesMatchWhatTorchSaved) {
  for (const char* name : {"every_dtype", "views", "module", "legacy", "legacy_views", "protocol4", "deflated", "zip64",
                           "nested_state_dict", "nested_model", "parameter", "old_style"}) {
    SCOPED_TRACE(name);
    const RawTensorMap expected = expected_from_json(dir_ / (std::string(name) + ".json"));
    ASSERT_FALSE(expected.empty());
    expect_same_raw(expected, read_pth(dir_ / (std::string(name) + ".pth")));
    expect_same_raw(expected, read_weights_file(dir_ / (std::string(name) + ".pth")));
  }
}

TEST_F(TorchFixtures, ViewsAreMadeContiguous) {
  RawTensorMap m = read_pth(dir_ / "views.pth");
  // transposed = arange(12).reshape(3,4).t(): row r of the result is column r.
  const RawTensor& t = m.at("transposed");
  ASSERT_EQ(t.shape, (std::vector<int64_t>{4, 3}));
  const float* v = reinterpret_cast<const float*>(t.data.data());
  EXPECT_EQ(v[0], 0.f);
  EXPECT_EQ(v[1], 4.f);
  EXPECT_EQ(v[2], 8.f);
  EXPECT_EQ(v[3], 1.f);
  const float* o = reinterpret_cast<const float*>(m.at("offset_view").data.data());
  EXPECT_EQ(o[0], 5.f);
  EXPECT_EQ(o[5], 10.f);
}

TEST_F(TorchFixtures, NonTensorEntriesAreNamed) {
  const std::string msg = error_of([&] { read_pth(dir_ / "non_tensor.pth"); });
  EXPECT_NE(msg.find("'not_a_tensor'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a tensor"), std::string::npos) << msg;
}

TEST_F(TorchFixtures, MaliciousPicklesAreRefusedAndNeverRun) {
  for (const char* name : {"malicious_reduce", "malicious_legacy", "malicious_posix"}) {
    SCOPED_TRACE(name);
    const fs::path file = dir_ / (std::string(name) + ".pth");
    const std::string msg = error_of([&] { read_pth(file); });
    EXPECT_NE(msg.find("refusing to load '" + file.string() + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("global 'posix.system'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("only state dicts of tensors are allowed"), std::string::npos) << msg;
    EXPECT_THROW(read_weights_file(file), Error);
  }
  const json markers = json::parse(read_file(dir_ / "markers.json"));
  ASSERT_EQ(markers.size(), 3u);
  for (const json& marker : markers) {
    EXPECT_FALSE(fs::exists(marker.get<std::string>())) << marker << ": the payload ran";
  }
}

TEST_F(TorchFixtures, EveryTruncationIsACleanError) {
  for (const char* name : {"every_dtype", "legacy"}) {
    SCOPED_TRACE(name);
    const std::string bytes = read_file(dir_ / (std::string(name) + ".pth"));
    ASSERT_LT(bytes.size(), 20000u);
    for (size_t len = 0; len < bytes.size(); ++len) {
      EXPECT_THROW(parse_pth(bytes.substr(0, len), "cut.pth"), Error) << "length " << len;
    }
  }
}

TEST_F(TorchFixtures, CorruptBytesNeverCrash) {
  for (const char* name : {"views", "legacy_views", "deflated"}) {
    SCOPED_TRACE(name);
    const std::string bytes = read_file(dir_ / (std::string(name) + ".pth"));
    for (size_t pos = 0; pos < bytes.size(); ++pos) {
      for (unsigned char value : {0x00, 0xff, 0x7f}) {
        std::string damaged = bytes;
        if (static_cast<unsigned char>(damaged[pos]) == value) continue;
        damaged[pos] = static_cast<char>(value);
        try {
          parse_pth(damaged, "damaged.pth");
        } catch (const Error&) {
          // expected for most positions; anything but an Error fails the test
        }
      }
    }
  }
}

TEST_F(TorchFixtures, SerializedFilesLoadInTorch) {
  RawTensorMap m = read_pth(dir_ / "every_dtype.pth");
  m["views.transposed"] = read_pth(dir_ / "views.pth").at("transposed");
  const fs::path out = testing::scratch_dir("pth_serialize") / "tabby.pth";
  write_pth(out, m);
  expect_same_raw(m, read_pth(out));
  const fs::path expected = out.parent_path() / "tabby.json";
  testing::write_bytes(expected, to_json(m).dump());
  auto r = testing::run_command(testing::shell_quote(python()) + " " + testing::shell_quote(fixture_script().string()) +
                                " --check " + testing::shell_quote(out.string()) + " " +
                                testing::shell_quote(expected.string()));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(Pth, SharedSqueezeNetMatchesItsSafetensors) {
  TABBY_REQUIRE_SHARED(shared);
  RawTensorMap pth = read_pth(shared / "weights" / "squeezenet1_1_imagenet.pth");
  SafetensorsFile st = read_safetensors(shared / "weights" / "squeezenet1_1_imagenet.safetensors");
  EXPECT_EQ(pth.size(), 52u);
  expect_same_raw(st.tensors, pth);
}

TEST(Pth, RoundTripInMemory) {
  RawTensorMap m;
  RawTensor a;
  a.dtype = DType::BF16;
  a.shape = {2, 2};
  a.data = std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  m["a"] = a;
  RawTensor s;
  s.dtype = DType::I64;
  s.data = std::string(8, '\x07');
  m["scalar"] = s;
  RawTensor big;
  big.dtype = DType::U8;
  big.shape = {70000};
  big.data = std::string(70000, '\x05');
  m["big.with.a.long.name"] = big;
  const std::string bytes = serialize_pth(m);
  expect_same_raw(m, parse_pth(bytes, "mem"));
  EXPECT_EQ(detect_weights_format(bytes), WeightsFormat::Pth);

  // torch.save's layout: each entry's data starts on a 64-byte boundary.
  zip::Reader zr(bytes, "mem");
  for (const zip::Entry& e : zr.entries()) {
    std::string buffer;
    std::string_view data = zr.read(e, buffer);
    EXPECT_EQ((data.data() - bytes.data()) % 64, 0) << e.name;
  }
}

// ---------------------------------------------------------------------------
// Hand-made pickles and archives.
// ---------------------------------------------------------------------------

// Builds protocol-2 pickle bytes.
struct Pickle {
  std::string b = std::string("\x80\x02", 2);
  Pickle& raw(const std::string& s) {
    b += s;
    return *this;
  }
  Pickle& str(const std::string& s) {
    b += 'X';
    uint32_t n = static_cast<uint32_t>(s.size());
    b.append(reinterpret_cast<const char*>(&n), 4);
    b += s;
    return *this;
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < 256) {
      b += 'K';
      b += static_cast<char>(v);
    } else {
      b += "\x8a\x08";
      b.append(reinterpret_cast<const char*>(&v), 8);
    }
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) { return raw("c" + module + "\n" + name + "\n"); }
  Pickle& ints(const std::vector<int64_t>& v) {
    raw("(");
    for (int64_t x : v) integer(x);
    return raw("t");
  }
  // _rebuild_tensor_v2(storage(key, numel), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, const std::string& storage_type, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2");
    raw("((").str("storage").global("torch", storage_type).str(key).str("cpu").integer(numel).raw("tQ");
    integer(offset).ints(size).ints(stride).raw("\x89");
    global("collections", "OrderedDict").raw(")R");
    return raw("tR");
  }
  std::string done() const { return b + "."; }
};

std::string archive(const std::string& pickle, const std::map<std::string, std::string>& storages,
                    const std::string& prefix = "archive") {
  ZipWriter w;
  w.add(prefix + "/data.pkl", pickle);
  for (const auto& [k, v] : storages) w.add(prefix + "/data/" + k, v);
  w.add(prefix + "/version", "3\n");
  return w.finish();
}

std::string floats(std::initializer_list<float> v) {
  std::string out;
  for (float f : v) out.append(reinterpret_cast<const char*>(&f), 4);
  return out;
}

std::string dict_of(const std::string& name, const std::function<void(Pickle&)>& value) {
  Pickle p;
  p.global("collections", "OrderedDict").raw(")R").str(name);
  value(p);
  p.raw("s");
  return p.done();
}

std::string pth_error(const std::string& bytes) { return error_of([&] { parse_pth(bytes, "crafted.pth"); }); }

TEST(PthCrafted, MinimalStateDict) {
  const std::string pkl = dict_of("w", [](Pickle& p) { p.tensor("0", "FloatStorage", 4, 1, {3}, {1}); });
  RawTensorMap m = parse_pth(archive(pkl, {{"0", floats({1, 2, 3, 4})}}), "crafted.pth");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.at("w").data, floats({2, 3, 4}));
  // Any prefix works, as torch names it after the file.
  EXPECT_EQ(parse_pth(archive(pkl, {{"0", floats({1, 2, 3, 4})}}, "my_model"), "crafted.pth").size(), 1u);
}

TEST(PthCrafted, OtherGlobalsAreRefusedByName) {
  const std::string storage = floats({1});
  EXPECT_NE(pth_error(archive(Pickle().global("os", "system").str("ls").raw("\x85R").done(), {})).find(
                "its pickle asks for global 'os.system'"),
            std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().global("__builtin__", "getattr").done(), {})).find("'__builtin__.getattr'"),
            std::string::npos);
  // Protocol 4's STACK_GLOBAL goes through the same allowlist.
  EXPECT_NE(pth_error(archive(Pickle().str("builtins").str("eval").raw("\x93").done(), {})).find("'builtins.eval'"),
            std::string::npos);
  // A global hidden inside a tensor's arguments.
  const std::string hidden = dict_of("w", [](Pickle& p) {
    p.global("torch._utils", "_rebuild_tensor_v2").raw("((").str("storage").global("subprocess", "Popen");
  });
  EXPECT_NE(pth_error(archive(hidden, {})).find("'subprocess.Popen'"), std::string::npos);
}

TEST(PthCrafted, CodeRunningOpcodesAreRefused) {
  // INST and OBJ build arbitrary objects in protocols 0/1; EXT1 uses the copyreg registry.
  for (const std::string body : {std::string("(ios\nsystem\n"), std::string("(o"), std::string("\x82\x01", 2)}) {
    const std::string msg = pth_error(archive(Pickle().raw(body).done(), {}));
    EXPECT_NE(msg.find("refusing to load"), std::string::npos) << msg;
  }
  // Calling or instantiating an allowed storage type is not something a state dict does.
  EXPECT_NE(pth_error(archive(Pickle().global("torch", "FloatStorage").raw(")R").done(), {})).find("refusing"),
            std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().global("torch", "FloatStorage").raw(")\x81").done(), {})).find("instantiates"),
            std::string::npos);
}

TEST(PthCrafted, ParameterAndTensorSubclassWrappersOfNewerTorch) {
  // torch 2.x: _rebuild_parameter_with_state(data, requires_grad, hooks, state)
  const std::string with_state = dict_of("p", [](Pickle& p) {
    p.global("torch._utils", "_rebuild_parameter_with_state").raw("(");
    p.tensor("0", "FloatStorage", 2, 0, {2}, {1});
    p.raw("\x88").global("collections", "OrderedDict").raw(")R}t").raw("R");
  });
  EXPECT_EQ(parse_pth(archive(with_state, {{"0", floats({5, 6})}}), "c").at("p").data, floats({5, 6}));
  // _rebuild_from_type_v2(_rebuild_tensor_v2, torch._tensor.Tensor, (args...), {'note': 'x'})
  const std::string from_type = dict_of("t", [](Pickle& p) {
    p.global("torch._tensor", "_rebuild_from_type_v2").raw("(");
    p.global("torch._utils", "_rebuild_tensor_v2").global("torch._tensor", "Tensor");
    p.raw("((").str("storage").global("torch", "HalfStorage").str("0").str("cpu").integer(2).raw("tQ");
    p.integer(0).ints({2}).ints({1}).raw("\x89").global("collections", "OrderedDict").raw(")Rt");
    p.raw("}").str("note").str("x").raw("s").raw("tR");
  });
  RawTensorMap m = parse_pth(archive(from_type, {{"0", std::string("\x00\x3c\x00\x40", 4)}}), "c");
  EXPECT_EQ(m.at("t").dtype, DType::F16);
  EXPECT_EQ(m.at("t").shape, (std::vector<int64_t>{2}));
}

TEST(PthCrafted, ViewsThatLeaveTheirStorageAreRefused) {
  const std::map<std::string, std::string> four = {{"0", floats({1, 2, 3, 4})}};
  auto with = [&](int64_t numel, int64_t offset, std::vector<int64_t> size, std::vector<int64_t> stride) {
    return archive(dict_of("w", [&](Pickle& p) { p.tensor("0", "FloatStorage", numel, offset, size, stride); }), four);
  };
  EXPECT_NE(pth_error(with(4, 0, {5}, {1})).find("reads beyond its storage"), std::string::npos);
  EXPECT_NE(pth_error(with(4, 3, {2}, {1})).find("reads beyond its storage"), std::string::npos);
  EXPECT_NE(pth_error(with(4, 0, {2, 2}, {3, 1})).find("reads beyond its storage"), std::string::npos);
  EXPECT_NE(pth_error(with(4, 0, {2}, {-1})).find("negative"), std::string::npos);
  EXPECT_NE(pth_error(with(4, -1, {2}, {1})).find("negative"), std::string::npos);
  EXPECT_NE(pth_error(with(4, 0, {1ll << 40, 1ll << 40}, {0, 0})).find("too large"), std::string::npos);
  // expand()-style views may repeat elements, but not without bound.
  EXPECT_EQ(parse_pth(with(4, 1, {2, 3}, {0, 1}), "ok").at("w").data, floats({2, 3, 4, 2, 3, 4}));
  EXPECT_NE(pth_error(with(4, 0, {1ll << 30}, {0})).find("alias"), std::string::npos);
  // The storage entry is smaller than the id claims, or missing altogether.
  EXPECT_NE(pth_error(with(8, 0, {2}, {1})).find("fewer than"), std::string::npos);
  EXPECT_NE(pth_error(archive(dict_of("w", [](Pickle& p) { p.tensor("9", "FloatStorage", 1, 0, {1}, {1}); }), four))
                .find("missing"),
            std::string::npos);
  // A size of 0 along any dimension needs no data at all.
  EXPECT_EQ(parse_pth(with(4, 0, {0, 5}, {5, 1}), "ok").at("w").data.size(), 0u);
}

TEST(PthCrafted, HostileStructuresAreBounded) {
  // A million nested tuples: no recursion anywhere, so no stack overflow.
  std::string deep = Pickle().raw("N").raw(std::string(1000000, '\x85')).done();
  EXPECT_NE(pth_error(archive(deep, {})).find("not a dict of tensors"), std::string::npos);
  // An ever-growing stack, or marks, hit the limits.
  EXPECT_NE(pth_error(archive(Pickle().raw(std::string(1500000, 'N')).done(), {})).find("stack"), std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().raw(std::string(1500000, '(')).done(), {})).find("marks"), std::string::npos);
  // Memo abuse.
  EXPECT_NE(pth_error(archive(Pickle().raw("h\x07").done(), {})).find("memo slot 7"), std::string::npos);
  EXPECT_NO_THROW(parse_pth(archive(Pickle().raw("}r\xff\xff\xff\xff").done(), {}), "memo"));
  // Popping past a mark, closing a mark never opened, a string longer than the file.
  EXPECT_NE(pth_error(archive(Pickle().raw("N(0").done(), {})).find("empty stack"), std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().raw("t").done(), {})).find("mark"), std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().raw("X\xff\xff\xff\x7f").done(), {})).find("longer"), std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().raw("\x8b\xff\xff\xff\x00").done(), {})).find("too large"), std::string::npos);
  // Non-dict results and odd dict keys.
  EXPECT_NE(pth_error(archive(Pickle().raw("]").done(), {})).find("a list, not a dict"), std::string::npos);
  EXPECT_NE(pth_error(archive(Pickle().raw("}K\x01K\x02s").done(), {})).find("key"), std::string::npos);
  // A persistent id for something other than a storage (a pickled module's source).
  EXPECT_NE(pth_error(archive(Pickle().raw("(").str("module").raw("tQ").done(), {})).find("'module'"),
            std::string::npos);
}

TEST(PthCrafted, ArchiveProblemsAreNamed) {
  const std::string pkl = dict_of("w", [](Pickle& p) { p.tensor("0", "FloatStorage", 1, 0, {1}, {1}); });
  // Big-endian files.
  ZipWriter be;
  be.add("archive/data.pkl", pkl);
  be.add("archive/byteorder", "big");
  be.add("archive/data/0", floats({1}));
  EXPECT_NE(pth_error(be.finish()).find("big-endian"), std::string::npos);
  // TorchScript archives.
  ZipWriter ts;
  ts.add("model/code/__torch__.py", "def forward(self): pass");
  ts.add("model/constants.pkl", Pickle().raw(")").done());
  EXPECT_NE(pth_error(ts.finish()).find("TorchScript"), std::string::npos);
  // A zip without a pickle, and a zip with a corrupted storage (CRC).
  ZipWriter plain;
  plain.add("readme.txt", "hello");
  EXPECT_NE(pth_error(plain.finish()).find("without a data.pkl"), std::string::npos);
  std::string bytes = archive(pkl, {{"0", floats({1})}});
  const size_t at = bytes.find(floats({1}));
  ASSERT_NE(at, std::string::npos);
  bytes[at] ^= 1;
  EXPECT_NE(pth_error(bytes).find("CRC"), std::string::npos);
  // A zip comment after the directory is fine.
  std::string commented = archive(pkl, {{"0", floats({1})}});
  commented[commented.size() - 2] = 5;  // comment length, then the comment itself
  commented += "hello";
  EXPECT_EQ(parse_pth(commented, "commented").size(), 1u);
  // Legacy tar files and plain junk.
  std::string tar(1024, '\0');
  tar.replace(0, 8, "sys_info");
  tar.replace(257, 5, "ustar");
  EXPECT_NE(pth_error(tar).find("tar-based"), std::string::npos);
  EXPECT_NE(pth_error("hello").find("neither"), std::string::npos);
  EXPECT_NE(pth_error(std::string("\x80\x02K\x01.", 5)).find("magic number"), std::string::npos);
}

}  // namespace
}  // namespace tabby
