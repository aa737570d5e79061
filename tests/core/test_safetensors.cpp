// safetensors: round trips of every dtype, the real shared weight files, and
// damaged or hostile files (truncated, oversized header, wrong dtype, offsets
// past the end, shape/size mismatch) that must end in a clean tabby::Error.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <random>

#include "tabby/util/error.h"
#include "tabby/weights/safetensors.h"
#include "tabby/weights/weights_file.h"
#include "support/test_support.h"

namespace tabby {
namespace {

using nlohmann::json;

RawTensor make_tensor(DType dtype, std::vector<int64_t> shape, int seed) {
  RawTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(t.expected_bytes());
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<char>((i * 31 + seed * 7) & 0xff);
  if (dtype == DType::Bool) {
    for (char& c : t.data) c = static_cast<char>(c & 1);
  }
  return t;
}

RawTensorMap sample_tensors() {
  RawTensorMap m;
  m["conv.weight"] = make_tensor(DType::F32, {4, 3, 3, 3}, 1);
  m["half"] = make_tensor(DType::F16, {5}, 2);
  m["brain"] = make_tensor(DType::BF16, {2, 3}, 3);
  m["bn.num_batches_tracked"] = make_tensor(DType::I64, {}, 4);
  m["bytes"] = make_tensor(DType::U8, {7}, 5);
  m["mask"] = make_tensor(DType::Bool, {3}, 6);
  m["double"] = make_tensor(DType::F64, {1, 2}, 7);
  m["empty"] = make_tensor(DType::F32, {0, 4}, 8);
  m["ints"] = make_tensor(DType::I32, {2}, 9);
  m["shorts"] = make_tensor(DType::I16, {2}, 10);
  m["chars"] = make_tensor(DType::I8, {2}, 11);
  return m;
}

void expect_same_map(const RawTensorMap& a, const RawTensorMap& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << name;
    EXPECT_EQ(t.dtype, it->second.dtype) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_TRUE(t.data == it->second.data) << name;
  }
}

// A file with a hand-written header over `data`.
std::string file_with_header(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);  // the test machines are little-endian, like the format
  return out + header + data;
}

// Expects a tabby::Error whose message contains `needle`.
void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    parse_safetensors(bytes, "test.safetensors");
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, DtypeNamesAndSizes) {
  EXPECT_STREQ(dtype_name(DType::BF16), "BF16");
  EXPECT_STREQ(dtype_name(DType::Bool), "BOOL");
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_from_name("F32"), DType::F32);
  EXPECT_FALSE(dtype_from_name("F33").has_value());
  EXPECT_FALSE(checked_numel({1ll << 40, 1ll << 40}).has_value());
  EXPECT_EQ(checked_numel({0, 1ll << 62, 1ll << 62}), 0);
  EXPECT_EQ(checked_numel({}), 1);
}

TEST(Safetensors, RoundTripEveryDtypeWithMetadata) {
  const RawTensorMap tensors = sample_tensors();
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "caf\xc3\xa9"}};
  const std::string bytes = serialize_safetensors(tensors, meta);
  SafetensorsFile back = parse_safetensors(bytes, "roundtrip");
  expect_same_map(tensors, back.tensors);
  EXPECT_EQ(back.metadata, meta);

  // Header: padded with spaces so the data starts on an 8-byte boundary; tensors
  // in name order with contiguous offsets.
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.find_first_not_of(' ', header.rfind('}') + 1), std::string::npos);
  json h = json::parse(header);
  uint64_t expected_begin = 0;
  for (const auto& [name, t] : tensors) {
    const json& e = h.at(name);
    EXPECT_EQ(e.at("dtype").get<std::string>(), dtype_name(t.dtype));
    EXPECT_EQ(e.at("data_offsets")[0].get<uint64_t>(), expected_begin) << name;
    expected_begin += t.data.size();
  }
  EXPECT_EQ(bytes.size(), 8 + n + expected_begin);
}

TEST(Safetensors, WriteIsReadBackFromDisk) {
  auto dir = testing::scratch_dir("safetensors_write");
  const RawTensorMap tensors = sample_tensors();
  write_safetensors(dir / "w.safetensors", tensors, {{"k", "v"}});
  SafetensorsFile back = read_safetensors(dir / "w.safetensors");
  expect_same_map(tensors, back.tensors);
  EXPECT_EQ(back.metadata.at("k"), "v");
  expect_same_map(tensors, read_weights_file(dir / "w.safetensors"));
}

TEST(Safetensors, EmptyFileHasNoTensors) {
  SafetensorsFile f = parse_safetensors(serialize_safetensors({}), "empty");
  EXPECT_TRUE(f.tensors.empty());
}

TEST(Safetensors, WritingRejectsDataOfTheWrongSize) {
  RawTensorMap m;
  m["bad"] = make_tensor(DType::F32, {2, 2}, 0);
  m["bad"].data.pop_back();
  EXPECT_THROW(serialize_safetensors(m), Error);
}

TEST(Safetensors, RealSharedFilesParse) {
  TABBY_REQUIRE_SHARED(shared);
  SafetensorsFile mobilenet = read_safetensors(shared / "weights" / "mobilenet_v2_imagenet.safetensors");
  EXPECT_EQ(mobilenet.tensors.size(), 262u);
  const RawTensor& first = mobilenet.tensors.at("features.0.0.weight");
  EXPECT_EQ(first.dtype, DType::F32);
  EXPECT_EQ(first.shape, (std::vector<int64_t>{32, 3, 3, 3}));
  EXPECT_EQ(mobilenet.tensors.at("classifier.1.weight").shape, (std::vector<int64_t>{1000, 1280}));
  EXPECT_EQ(mobilenet.metadata.at("architecture"), "torchvision.models.mobilenet_v2");

  SafetensorsFile squeeze = read_safetensors(shared / "weights" / "squeezenet1_1_imagenet.safetensors");
  EXPECT_EQ(squeeze.tensors.size(), 52u);
  EXPECT_EQ(squeeze.tensors.at("features.0.weight").shape, (std::vector<int64_t>{64, 3, 3, 3}));

  SafetensorsFile vectors = read_safetensors(shared / "weights" / "squeezenet1_1_testvectors.safetensors");
  EXPECT_EQ(vectors.tensors.at("input_0").shape, (std::vector<int64_t>{1, 3, 224, 224}));
  EXPECT_EQ(vectors.tensors.at("output_0").shape, (std::vector<int64_t>{1, 1000}));

  // Written back by tabby and read again, nothing changes.
  SafetensorsFile again = parse_safetensors(serialize_safetensors(squeeze.tensors, squeeze.metadata), "again");
  expect_same_map(squeeze.tensors, again.tensors);
  EXPECT_EQ(again.metadata, squeeze.metadata);
}

TEST(Safetensors, EveryTruncationIsACleanError) {
  RawTensorMap m;
  m["a"] = make_tensor(DType::F32, {3}, 1);
  m["b"] = make_tensor(DType::BF16, {2, 2}, 2);
  const std::string bytes = serialize_safetensors(m, {{"x", "y"}});
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_THROW(parse_safetensors(bytes.substr(0, len), "cut"), Error) << "length " << len;
  }
}

TEST(Safetensors, CorruptBytesNeverCrash) {
  RawTensorMap m;
  m["a"] = make_tensor(DType::F32, {3}, 1);
  m["b"] = make_tensor(DType::I64, {2}, 2);
  const std::string bytes = serialize_safetensors(m);
  std::mt19937 rng(42);
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    for (int k = 0; k < 4; ++k) {
      std::string damaged = bytes;
      damaged[pos] = static_cast<char>(k == 0 ? 0xff : k == 1 ? 0 : rng() & 0xff);
      try {
        parse_safetensors(damaged, "damaged");
      } catch (const Error&) {
        // a clean error is the expected outcome for most positions
      }
    }
  }
}

TEST(Safetensors, OversizedHeaderLengths) {
  std::string bytes(16, ' ');
  uint64_t huge = 1ull << 40;
  std::memcpy(bytes.data(), &huge, 8);
  expect_error(bytes, "limit");
  uint64_t just_over = kMaxSafetensorsHeader + 1;
  std::memcpy(bytes.data(), &just_over, 8);
  expect_error(bytes, "limit");
  uint64_t past_end = 100;
  std::memcpy(bytes.data(), &past_end, 8);
  expect_error(bytes, "truncated");
  expect_error("abc", "only 3 bytes");
}

TEST(Safetensors, BadTensorDescriptions) {
  const std::string data(16, '\0');
  expect_error(file_with_header(R"({"w":{"dtype":"F33","shape":[4],"data_offsets":[0,16]}})", data), "unknown dtype 'F33'");
  expect_error(file_with_header(R"({"w":{"dtype":"U16","shape":[8],"data_offsets":[0,16]}})", data), "does not support");
  expect_error(file_with_header(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", data), "no dtype");
  expect_error(file_with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}})", data), "past the end");
  expect_error(file_with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", data), "need 12");
  expect_error(file_with_header(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", data), "non-negative");
  expect_error(file_with_header(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}})", data), "non-negative");
  expect_error(file_with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", data), "end before");
  expect_error(file_with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}})", data), "data_offsets");
  expect_error(file_with_header(
                   R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})", data),
               "too large");
  expect_error(file_with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                data),
               "overlap");
  expect_error(file_with_header(R"({"__metadata__":{"k":5}})", data), "not a string");
  expect_error(file_with_header(R"({"w":7})", data), "'w'");
}

TEST(Safetensors, MalformedHeaders) {
  expect_error(file_with_header("[1, 2]", ""), "not a JSON object");
  expect_error(file_with_header("{\"a\": ", ""), "not valid JSON");
  expect_error(file_with_header("", ""), "not a JSON object");
  // Nesting deep enough to overflow a recursive parser's stack.
  std::string deep = "{\"a\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  expect_error(file_with_header(deep, ""), "nested too deeply");
}

TEST(Safetensors, ContentDetection) {
  EXPECT_EQ(detect_weights_format(serialize_safetensors(sample_tensors())), WeightsFormat::Safetensors);
  EXPECT_EQ(detect_weights_format("hello world, not weights"), WeightsFormat::Unknown);
  auto dir = testing::scratch_dir("safetensors_detect");
  testing::write_bytes(dir / "junk.bin", "definitely not a weights file");
  try {
    read_weights_file(dir / "junk.bin");
    ADD_FAILURE() << "junk was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.bin"), std::string::npos);
  }
  EXPECT_THROW(read_safetensors(dir / "missing.safetensors"), Error);
}

}  // namespace
}  // namespace tabby
