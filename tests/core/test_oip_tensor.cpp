// The Open Inference Protocol's tensor checks and raw encodings shared by
// its JSON and gRPC forms (serve/oip_tensor.h): raw contents read back what
// was written, and every size that does not match the shape is refused with
// a 400 that says what was found.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tabby/serve/oip_tensor.h"

namespace tabby::serve {
namespace {

ModelSignature tensor_test_model() {
  ModelSignature m;
  m.name = "cats";
  m.height = 4;
  m.width = 5;
  m.classes = {"cat", "dog", "fox"};
  m.max_images = 8;
  return m;
}

// The message of the RequestError(400) that `f` throws; "" when none.
template <typename F>
std::string refusal_of(F&& f) {
  try {
    f();
  } catch (const RequestError& e) {
    EXPECT_EQ(e.status(), 400) << e.what();
    return e.what();
  }
  return "";
}

TEST(OipTensor, ShapesGiveTheImageCount) {
  const ModelSignature m = tensor_test_model();
  EXPECT_EQ(fp32_images({2, 3, 4, 5}, m), 2);
  EXPECT_EQ(bytes_images({3}), 3);
  EXPECT_EQ(bytes_images({3, 1}), 3);
  EXPECT_NE(refusal_of([&] { fp32_images({2, 3, 5, 4}, m); }).find("[N, 3, 4, 5]"), std::string::npos);
  EXPECT_NE(refusal_of([&] { fp32_images({-1, 3, 4, 5}, m); }), "");
  EXPECT_NE(refusal_of([] { bytes_images({3, 2}); }).find("[N] or [N, 1]"), std::string::npos);
  EXPECT_NE(refusal_of([] { bytes_images({}); }), "");
  EXPECT_NE(refusal_of([&] { check_image_count(0, m); }).find("no image"), std::string::npos);
  EXPECT_NE(refusal_of([&] { check_image_count(9, m); }).find("at most 8"), std::string::npos);
  EXPECT_EQ(classification_count(2, m), 2);
  EXPECT_EQ(classification_count(10, m), 3);  // at most the classes
  EXPECT_NE(refusal_of([&] { classification_count(0, m); }), "");
}

TEST(OipTensor, RawContentsReadBackWhatWasWritten) {
  const std::vector<float> values = {0.f, 1.5f, 255.f, -2.25f};
  const std::string raw = raw_of_fp32(values);
  ASSERT_EQ(raw.size(), 16u);
  EXPECT_EQ(raw.substr(4, 4), std::string("\x00\x00\xc0\x3f", 4));  // 1.5f, little-endian
  EXPECT_EQ(fp32_from_raw(raw, 4), values);
  const std::vector<std::string> elements = {"abc", "", std::string("\x00\xff", 2)};
  const std::string bytes = raw_of_bytes(elements);
  EXPECT_EQ(bytes.substr(0, 7), std::string("\x03\x00\x00\x00" "abc", 7));
  EXPECT_EQ(bytes_from_raw(bytes, 3), elements);
}

TEST(OipTensor, RawContentsOfTheWrongSizeAreRefused) {
  const std::string raw = raw_of_fp32({1.f, 2.f, 3.f});
  EXPECT_NE(refusal_of([&] { fp32_from_raw(raw, 4); }).find("hold 12 bytes"), std::string::npos);
  EXPECT_NE(refusal_of([&] { fp32_from_raw(raw.substr(0, 11), 3); }), "");
  EXPECT_NE(refusal_of([] { fp32_from_raw(raw_of_fp32({std::numeric_limits<float>::quiet_NaN()}), 1); })
                .find("finite"),
            std::string::npos);
  const std::string bytes = raw_of_bytes({"abcd", "efgh"});
  EXPECT_NE(refusal_of([&] { bytes_from_raw(bytes, 3); }).find("hold 2 elements"), std::string::npos);
  EXPECT_NE(refusal_of([&] { bytes_from_raw(bytes.substr(0, bytes.size() - 1), 2); }).find("inside element 1"),
            std::string::npos);
  EXPECT_NE(refusal_of([&] { bytes_from_raw(bytes.substr(0, 10), 2); }).find("inside an element's length"),
            std::string::npos);
}

TEST(OipTensor, ClassificationElementsPutEachImagesBestFirst) {
  const ModelSignature m = tensor_test_model();
  InferRequest r;
  r.images = 2;
  r.classification = 2;
  const std::vector<float> probabilities = {0.2f, 0.7f, 0.1f, 0.5f, 0.1f, 0.4f};
  EXPECT_EQ(classification_elements(r, m, probabilities),
            (std::vector<std::string>{"0.700000:1:dog", "0.200000:0:cat", "0.500000:0:cat", "0.400000:2:fox"}));
}

}  // namespace
}  // namespace tabby::serve
