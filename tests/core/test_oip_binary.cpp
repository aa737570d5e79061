// Triton's binary tensor data extension (serve/oip_binary.h): requests laid
// out as tritonclient.http lays them out, every way a body can lie about its
// sizes refused with a 400 that says which, and outputs as raw bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tabby/serve/oip_binary.h"

namespace tabby::serve {
namespace {

using nlohmann::json;

// 2x2 pixels, two classes, at most 4 images a request.
ModelSignature tiny_cats() { return ModelSignature{"cats", 2, 2, {"cat", "dog"}, 4}; }

// A body as tritonclient sends it: the JSON, then the raw bytes; the header
// length is the JSON's.
struct BinaryBody {
  std::string body;
  std::string header_length;
};

BinaryBody binary_body(const json& header, const std::string& raw) {
  const std::string text = header.dump();
  return {text + raw, std::to_string(text.size())};
}

json fp32_binary_header(int64_t images, size_t bytes) {
  return {{"inputs", {{{"name", "images"}, {"shape", {images, 3, 2, 2}}, {"datatype", "FP32"},
                       {"parameters", {{"binary_data_size", bytes}}}}}}};
}

json bytes_binary_header(int64_t images, size_t bytes) {
  return {{"inputs", {{{"name", "image_bytes"}, {"shape", {images, 1}}, {"datatype", "BYTES"},
                       {"parameters", {{"binary_data_size", bytes}}}}}}};
}

std::string binary_request_error(const std::string& body, const std::string& header_length) {
  try {
    parse_binary_infer_request(body, header_length, tiny_cats());
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << body;
  return "";
}

std::string binary_request_error(const BinaryBody& b) { return binary_request_error(b.body, b.header_length); }

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 1.5f;
  return v;
}

TEST(OipBinary, Fp32AndBytesRoundTripLittleEndian) {
  const std::string raw = raw_of_fp32({1.0f, -2.5f});
  ASSERT_EQ(raw.size(), 8u);
  EXPECT_EQ(raw.substr(0, 4), std::string("\x00\x00\x80\x3f", 4));  // 1.0f, low byte first
  EXPECT_EQ(fp32_from_raw(raw, 2, "x"), (std::vector<float>{1.0f, -2.5f}));
  const std::string bytes = raw_of_bytes({"ab", "", "xyz"});
  EXPECT_EQ(bytes, std::string("\x02\x00\x00\x00" "ab" "\x00\x00\x00\x00" "\x03\x00\x00\x00" "xyz", 17));
  EXPECT_EQ(bytes_from_raw(bytes, 3, "x"), (std::vector<std::string>{"ab", "", "xyz"}));
}

TEST(OipBinary, Fp32PixelsAsRawBytes) {
  const std::vector<float> pixels = ramp(2 * 12);
  json header = fp32_binary_header(2, pixels.size() * 4);
  header["id"] = "b1";
  const BinaryBody b = binary_body(header, raw_of_fp32(pixels));
  const InferRequest r = parse_binary_infer_request(b.body, b.header_length, tiny_cats());
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.pixels, pixels);
  EXPECT_EQ(r.id, "b1");
  EXPECT_FALSE(r.binary_output);
}

TEST(OipBinary, EncodedImagesAsLengthPrefixedElements) {
  const std::string raw = raw_of_bytes({"\x89PNG first", std::string("\0jpeg\0", 6)});
  const BinaryBody b = binary_body(bytes_binary_header(2, raw.size()), raw);
  const InferRequest r = parse_binary_infer_request(b.body, b.header_length, tiny_cats());
  EXPECT_EQ(r.images, 2);
  EXPECT_EQ(r.encoded, (std::vector<std::string>{"\x89PNG first", std::string("\0jpeg\0", 6)}));
}

// An input without binary_data_size carries JSON `data`, even in a body with
// the header (tritonclient's binary_data=False input beside binary outputs).
TEST(OipBinary, JsonDataInABinaryBody) {
  const std::vector<float> pixels = ramp(12);
  const json header = {{"inputs", {{{"name", "images"}, {"shape", {1, 3, 2, 2}}, {"datatype", "FP32"}, {"data", pixels}}}},
                       {"outputs", {{{"name", "probabilities"}, {"parameters", {{"binary_data", true}}}}}}};
  const BinaryBody b = binary_body(header, "");
  const InferRequest r = parse_binary_infer_request(b.body, b.header_length, tiny_cats());
  EXPECT_EQ(r.pixels, pixels);
  EXPECT_TRUE(r.binary_output);
  // ... but then nothing may follow the JSON.
  EXPECT_NE(binary_request_error(b.body + "xx", b.header_length).find("2 bytes of binary data follow"),
            std::string::npos);
}

TEST(OipBinary, TheHeaderLengthMustBeANumberWithinTheBody) {
  const std::vector<float> pixels = ramp(12);
  const BinaryBody b = binary_body(fp32_binary_header(1, 48), raw_of_fp32(pixels));
  for (const char* length : {"", "-5", "+12", "12abc", " 12", "99999999999999999999999"}) {
    EXPECT_NE(binary_request_error(b.body, length).find("must be a number of bytes"), std::string::npos) << length;
  }
  const std::string past = std::to_string(b.body.size() + 1);
  EXPECT_NE(binary_request_error(b.body, past).find("holds only"), std::string::npos);
  // Too short: the JSON is cut off.
  const std::string cut = std::to_string(std::stoul(b.header_length) - 3);
  EXPECT_NE(binary_request_error(b.body, cut).find("not valid JSON"), std::string::npos);
  EXPECT_NE(binary_request_error(b.body, "0").find("not valid JSON"), std::string::npos);
}

TEST(OipBinary, EverySizeIsCheckedExactly) {
  const std::vector<float> pixels = ramp(12);
  // binary_data_size past the end of the body.
  BinaryBody b = binary_body(fp32_binary_header(1, 48), raw_of_fp32(pixels).substr(0, 40));
  EXPECT_NE(binary_request_error(b).find("only 40 bytes of binary data follow"), std::string::npos);
  // A size that is not the shape's.
  b = binary_body(fp32_binary_header(1, 44), raw_of_fp32(pixels).substr(0, 44));
  EXPECT_NE(binary_request_error(b).find("44 bytes of binary data; its shape says 12 FP32 values"), std::string::npos);
  // Bytes left after the inputs.
  b = binary_body(fp32_binary_header(1, 48), raw_of_fp32(pixels) + "zz");
  EXPECT_NE(binary_request_error(b).find("2 bytes of binary data follow"), std::string::npos);
  // Not finite.
  std::vector<float> nan = pixels;
  nan[5] = std::nanf("");
  b = binary_body(fp32_binary_header(1, 48), raw_of_fp32(nan));
  EXPECT_NE(binary_request_error(b).find("finite"), std::string::npos);
  // Both JSON data and binary.
  json both = fp32_binary_header(1, 48);
  both["inputs"][0]["data"] = pixels;
  b = binary_body(both, raw_of_fp32(pixels));
  EXPECT_NE(binary_request_error(b).find("both `data` and `binary_data_size`"), std::string::npos);
  // A size that is no size.
  json negative = fp32_binary_header(1, 48);
  negative["inputs"][0]["parameters"]["binary_data_size"] = -1;
  b = binary_body(negative, raw_of_fp32(pixels));
  EXPECT_NE(binary_request_error(b).find("`binary_data_size` must be"), std::string::npos);
  // A name or datatype that is not a string: a 400, not nlohmann's type_error.
  json numeric = fp32_binary_header(1, 48);
  numeric["inputs"][0]["datatype"] = 32;
  b = binary_body(numeric, raw_of_fp32(pixels));
  EXPECT_NE(binary_request_error(b).find("`datatype` must be a string"), std::string::npos);
  numeric = fp32_binary_header(1, 48);
  numeric["outputs"] = {{{"name", 7}}};
  b = binary_body(numeric, raw_of_fp32(pixels));
  EXPECT_NE(binary_request_error(b).find("`name` must be a string"), std::string::npos);
  // The image count is checked before any size (nothing allocated for a huge shape).
  b = binary_body(fp32_binary_header(int64_t{1} << 60, 48), raw_of_fp32(pixels));
  EXPECT_NE(binary_request_error(b).find("at most 4 images"), std::string::npos);
  b = binary_body(fp32_binary_header(0, 0), "");
  EXPECT_NE(binary_request_error(b).find("no image"), std::string::npos);
}

TEST(OipBinary, BytesElementsMustFitTheirLengths) {
  // A length prefix cut off.
  std::string raw = raw_of_bytes({"abc"}) + std::string("\x05\x00", 2);
  BinaryBody b = binary_body(bytes_binary_header(2, raw.size()), raw);
  EXPECT_NE(binary_request_error(b).find("length of BYTES element 1 is cut off"), std::string::npos);
  // A length past the end.
  raw = raw_of_bytes({"abc"}) + std::string("\xff\xff\xff\x7f" "de", 6);
  b = binary_body(bytes_binary_header(2, raw.size()), raw);
  EXPECT_NE(binary_request_error(b).find("element 1 claims 2147483647 bytes; 2 remain"), std::string::npos);
  // Fewer elements than the shape says.
  raw = raw_of_bytes({"abc"});
  b = binary_body(bytes_binary_header(3, raw.size()), raw);
  EXPECT_NE(binary_request_error(b).find("too few for 3 BYTES elements"), std::string::npos);
  raw = raw_of_bytes({"abcdefghijklmnop"});
  b = binary_body(bytes_binary_header(2, raw.size()), raw);
  EXPECT_NE(binary_request_error(b).find("element 1 is cut off"), std::string::npos);
  // More elements than the shape says.
  raw = raw_of_bytes({"a", "b"});
  b = binary_body(bytes_binary_header(1, raw.size()), raw);
  EXPECT_NE(binary_request_error(b).find("follow its 1 BYTES elements"), std::string::npos);
}

TEST(OipBinary, JsonRequestsCannotClaimBinaryData) {
  const json header = fp32_binary_header(1, 48);
  try {
    parse_infer_request(header, tiny_cats());
    FAIL() << "accepted binary_data_size without binary data";
  } catch (const RequestError& e) {
    EXPECT_NE(std::string(e.what()).find("Inference-Header-Content-Length"), std::string::npos) << e.what();
  }
}

TEST(OipBinary, OutputsAsRawBytesWhenAsked) {
  json header = fp32_binary_header(2, 96);
  header["id"] = "r9";
  header["parameters"] = {{"binary_data_output", true}};
  BinaryBody b = binary_body(header, raw_of_fp32(ramp(24)));
  InferRequest r = parse_binary_infer_request(b.body, b.header_length, tiny_cats());
  ASSERT_TRUE(r.binary_output);
  const std::vector<float> probs = {0.9f, 0.1f, 0.2f, 0.8f};
  EncodedInferResponse out = encode_infer_response(r, tiny_cats(), probs);
  ASSERT_TRUE(out.header_length);
  json head = json::parse(out.body.substr(0, *out.header_length));
  EXPECT_EQ(head["id"], "r9");
  EXPECT_EQ(head["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(head["outputs"][0]["shape"], json({2, 2}));
  EXPECT_FALSE(head["outputs"][0].contains("data"));
  EXPECT_EQ(head["outputs"][0]["parameters"]["binary_data_size"], 16);
  EXPECT_EQ(out.body.substr(*out.header_length), raw_of_fp32(probs));

  // The classification extension's strings, length-prefixed.
  header["outputs"] = {{{"name", "probabilities"}, {"parameters", {{"classification", 1}, {"binary_data", true}}}}};
  b = binary_body(header, raw_of_fp32(ramp(24)));
  r = parse_binary_infer_request(b.body, b.header_length, tiny_cats());
  out = encode_infer_response(r, tiny_cats(), probs);
  ASSERT_TRUE(out.header_length);
  head = json::parse(out.body.substr(0, *out.header_length));
  EXPECT_EQ(head["outputs"][0]["datatype"], "BYTES");
  EXPECT_EQ(head["outputs"][0]["shape"], json({2, 1}));
  const std::string raw = out.body.substr(*out.header_length);
  EXPECT_EQ(head["outputs"][0]["parameters"]["binary_data_size"], raw.size());
  EXPECT_EQ(bytes_from_raw(raw, 2, "output"), (std::vector<std::string>{"0.900000:0:cat", "0.800000:1:dog"}));

  // An output's binary_data: false wins over the request's binary_data_output.
  header["outputs"][0]["parameters"]["binary_data"] = false;
  b = binary_body(header, raw_of_fp32(ramp(24)));
  r = parse_binary_infer_request(b.body, b.header_length, tiny_cats());
  out = encode_infer_response(r, tiny_cats(), probs);
  EXPECT_FALSE(out.header_length);
  EXPECT_EQ(json::parse(out.body)["outputs"][0]["data"][1], "0.800000:1:dog");
}

TEST(OipBinary, AJsonRequestMayAskForABinaryOutput) {
  const json body = {{"inputs", {{{"name", "images"}, {"shape", {1, 3, 2, 2}}, {"datatype", "FP32"}, {"data", ramp(12)}}}},
                     {"outputs", {{{"name", "probabilities"}, {"parameters", {{"binary_data", true}}}}}}};
  const InferRequest r = parse_infer_request(body, tiny_cats());
  EXPECT_TRUE(r.binary_output);
  const EncodedInferResponse out = encode_infer_response(r, tiny_cats(), {0.25f, 0.75f});
  ASSERT_TRUE(out.header_length);
  EXPECT_EQ(out.body.substr(*out.header_length), raw_of_fp32({0.25f, 0.75f}));
  // Without asking: JSON as before.
  json plain = body;
  plain.erase("outputs");
  EXPECT_FALSE(encode_infer_response(parse_infer_request(plain, tiny_cats()), tiny_cats(), {0.25f, 0.75f}).header_length);
  json wrong = body;
  wrong["outputs"][0]["parameters"]["binary_data"] = "yes";
  EXPECT_THROW(parse_infer_request(wrong, tiny_cats()), RequestError);
  wrong = plain;
  wrong["parameters"] = {{"binary_data_output", 1}};
  EXPECT_THROW(parse_infer_request(wrong, tiny_cats()), RequestError);
}

}  // namespace
}  // namespace tabby::serve
