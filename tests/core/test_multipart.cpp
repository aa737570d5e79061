// The multipart/form-data reader of POST /predictions/{m}: forms as curl -F
// and browsers send them, the part chosen, and malformed forms refused with 400.
#include <gtest/gtest.h>

#include <functional>

#include "tabby/serve/multipart.h"
#include "tabby/serve/oip.h"

namespace tabby::serve {
namespace {

// A form of (headers, body) parts, each headers line CRLF-terminated.
std::string form_of(const std::string& boundary, const std::vector<std::pair<std::string, std::string>>& parts) {
  std::string out;
  for (const auto& [headers, body] : parts) out += "--" + boundary + "\r\n" + headers + "\r\n" + body + "\r\n";
  return out + "--" + boundary + "--\r\n";
}

int form_status(const std::function<void()>& f) {
  try {
    f();
  } catch (const RequestError& e) {
    return e.status();
  }
  return 0;
}

TEST(Multipart, TheBoundaryComesFromTheContentType) {
  EXPECT_EQ(form_boundary("multipart/form-data; boundary=abc123"), "abc123");
  EXPECT_EQ(form_boundary("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
  EXPECT_EQ(form_boundary("multipart/form-data; charset=utf-8; boundary=----x"), "----x");
  EXPECT_FALSE(form_boundary("image/jpeg"));
  EXPECT_FALSE(form_boundary(""));
  EXPECT_EQ(form_status([] { form_boundary("multipart/form-data"); }), 400);
  EXPECT_EQ(form_status([] { form_boundary("multipart/form-data; boundary=\"open"); }), 400);
  EXPECT_EQ(form_status([] { form_boundary("multipart/form-data; boundary=" + std::string(71, 'x')); }), 400);
}

TEST(Multipart, ThePartNamedDataFileOrImageIsTheUpload) {
  const std::string body =
      form_of("XyZ", {{"Content-Disposition: form-data; name=\"note\"\r\n", "hello"},
                      {"Content-Disposition: form-data; name=\"other\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n",
                       "first file"},
                      {"content-disposition: form-data; name=\"file\"; filename=\"cat.jpg\"\r\n", "\xff\xd8 jpeg\r\n bytes"}});
  EXPECT_EQ(form_upload(body, "XyZ"), "\xff\xd8 jpeg\r\n bytes");
  const auto parts = form_parts(body, "XyZ");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[1].name, "other");
  EXPECT_EQ(parts[1].filename, "a.png");
  EXPECT_EQ(parts[1].content_type, "image/png");
  EXPECT_EQ(parts[0].body, "hello");
}

TEST(Multipart, ElseTheFirstFilePartElseTheFirstPart) {
  const std::string with_file =
      form_of("b", {{"Content-Disposition: form-data; name=\"note\"\r\n", "hello"},
                    {"Content-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n", "png bytes"},
                    {"Content-Disposition: form-data; name=\"more\"; filename=\"b.png\"\r\n", "other bytes"}});
  EXPECT_EQ(form_upload(with_file, "b"), "png bytes");
  const std::string fields_only = form_of("b", {{"Content-Disposition: form-data; name=\"a\"\r\n", "one"},
                                                {"Content-Disposition: form-data; name=\"b\"\r\n", "two"}});
  EXPECT_EQ(form_upload(fields_only, "b"), "one");
}

TEST(Multipart, APreambleAndAnEpilogueAreSkipped) {
  const std::string body = "preamble text\r\n" +
                           form_of("q", {{"Content-Disposition: form-data; name=\"data\"\r\n", "image"}}) +
                           "epilogue";
  EXPECT_EQ(form_upload(body, "q"), "image");
}

TEST(Multipart, MalformedFormsAre400) {
  const std::string part = "Content-Disposition: form-data; name=\"data\"\r\n";
  const std::string good = form_of("q", {{part, "image"}});
  // No closing delimiter: the body was cut short.
  EXPECT_EQ(form_status([&] { form_upload(good.substr(0, good.find("\r\n--q--")), "q"); }), 400);
  EXPECT_EQ(form_status([&] { form_upload("no boundary here", "q"); }), 400);
  EXPECT_EQ(form_status([&] { form_upload(good, "other"); }), 400);
  EXPECT_EQ(form_status([&] { form_upload("--q--\r\n", "q"); }), 400);  // no part at all
  // A part without its blank line, without Content-Disposition, or a header line without ':'.
  EXPECT_EQ(form_status([&] { form_upload("--q\r\n" + part + "image", "q"); }), 400);
  EXPECT_EQ(form_status([&] { form_upload(form_of("q", {{"Content-Type: image/png\r\n", "x"}}), "q"); }), 400);
  EXPECT_EQ(form_status([&] { form_upload(form_of("q", {{"nonsense\r\n", "x"}}), "q"); }), 400);
  EXPECT_EQ(form_status([&] { form_upload("--qjunk\r\n" + part + "\r\nx\r\n--q--", "q"); }), 400);
  // The chosen part is empty.
  EXPECT_EQ(form_status([&] { form_upload(form_of("q", {{part, ""}}), "q"); }), 400);
}

}  // namespace
}  // namespace tabby::serve
