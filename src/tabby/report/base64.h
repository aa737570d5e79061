// Base64 (RFC 4648, standard alphabet, '=' padding), for embedding images in
// self-contained HTML as data URIs.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tabby::report {

std::string base64_encode(std::string_view bytes);

// nullopt when `text` is not valid padded base64 (whitespace is not allowed).
std::optional<std::string> base64_decode(std::string_view text);

// "data:<mime>;base64,<...>"
std::string data_uri(std::string_view mime, std::string_view bytes);

}  // namespace tabby::report
