// multipart/form-data (RFC 7578), the way browsers and `curl -F` upload a
// file: the image of POST /predictions/{m} may come as one part of a form.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tabby::serve {

struct FormPart {
  std::string name, filename, content_type;
  std::string_view body;  // into the parsed body
};

// The boundary of "multipart/form-data; boundary=..." (quoted or not);
// nullopt for any other content type. RequestError(400) for a form without one.
std::optional<std::string> form_boundary(const std::string& content_type);

// The parts of a form; RequestError(400) when the body is not one.
std::vector<FormPart> form_parts(std::string_view body, const std::string& boundary);

// The uploaded file: the part named data, file or image, else the first part
// with a filename or a content type, else the first part. RequestError(400)
// for a malformed form, or when the part chosen is empty.
std::string form_upload(std::string_view body, const std::string& boundary);

}  // namespace tabby::serve
