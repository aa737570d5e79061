// Base64 through OpenSSL's EVP block coder. EVP_DecodeBlock is lenient about
// whitespace and counts padding as zero bytes, so decoding checks the text
// first and trims what the padding stood for.
#include "tabby/report/base64.h"

#include <openssl/evp.h>

namespace tabby::report {

namespace {

bool is_symbol(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

// Padded base64: symbols, then at most two '=' at the very end.
size_t padding_of_valid(std::string_view text, bool& valid) {
  valid = text.size() % 4 == 0;
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; valid && i + pad < text.size(); ++i) valid = is_symbol(text[i]);
  return pad;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  bool valid = false;
  const size_t pad = padding_of_valid(text, valid);
  if (!valid) return std::nullopt;
  if (text.empty()) return std::string();
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0 || static_cast<size_t>(n) < pad) return std::nullopt;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string data_uri(std::string_view mime, std::string_view bytes) {
  return "data:" + std::string(mime) + ";base64," + base64_encode(bytes);
}

}  // namespace tabby::report
