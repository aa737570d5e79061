#include "tabby/serve/multipart.h"

#include <algorithm>
#include <cctype>

#include "tabby/serve/oip.h"

namespace tabby::serve {

namespace {

[[noreturn]] void bad_form(const std::string& why) { throw RequestError(400, "the multipart form " + why); }

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `value; key=v; key2="v; 2"`: the parameter `key` (quotes removed), "" when absent.
std::string header_parameter(std::string_view value, const std::string& key) {
  constexpr auto npos = std::string_view::npos;
  size_t at = value.find(';');
  while (at != npos) {
    const size_t eq = value.find_first_of("=;", at + 1);
    if (eq == npos) break;
    if (value[eq] == ';') {  // a parameter without a value
      at = eq;
      continue;
    }
    const std::string name = lower_ascii(trimmed(value.substr(at + 1, eq - at - 1)));
    size_t v = eq + 1;
    while (v < value.size() && (value[v] == ' ' || value[v] == '\t')) ++v;
    std::string found;
    if (v < value.size() && value[v] == '"') {
      const size_t close = value.find('"', v + 1);
      if (close == npos) bad_form("has an unclosed quote in a header");
      found = std::string(value.substr(v + 1, close - v - 1));
      at = value.find(';', close);
    } else {
      at = value.find(';', v);
      found = std::string(trimmed(value.substr(v, at == npos ? npos : at - v)));
    }
    if (name == key) return found;
  }
  return "";
}

// Reads a part's head (up to its blank line) into `part`; the offset after it.
size_t read_part_head(std::string_view body, size_t at, FormPart& part) {
  bool disposition = false;
  for (;;) {
    const size_t eol = body.find("\r\n", at);
    if (eol == std::string_view::npos) bad_form("ends inside a part's headers");
    const std::string_view line = body.substr(at, eol - at);
    at = eol + 2;
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) bad_form("has a header line without ':'");
    const std::string name = lower_ascii(trimmed(line.substr(0, colon)));
    const std::string_view value = trimmed(line.substr(colon + 1));
    if (name == "content-disposition") {
      disposition = true;
      part.name = header_parameter(value, "name");
      part.filename = header_parameter(value, "filename");
    } else if (name == "content-type") {
      part.content_type = std::string(value);
    }
  }
  if (!disposition) bad_form("has a part without Content-Disposition");
  return at;
}

}  // namespace

std::optional<std::string> form_boundary(const std::string& content_type) {
  const std::string type = lower_ascii(trimmed(std::string_view(content_type).substr(0, content_type.find(';'))));
  if (type != "multipart/form-data") return std::nullopt;
  std::string boundary = header_parameter(content_type, "boundary");
  // RFC 2046: 1 to 70 characters.
  if (boundary.empty() || boundary.size() > 70) {
    throw RequestError(400, "a multipart/form-data body needs a boundary of 1 to 70 characters in its Content-Type");
  }
  return boundary;
}

std::vector<FormPart> form_parts(std::string_view body, const std::string& boundary) {
  const std::string first = "--" + boundary;
  const std::string between = "\r\n" + first;
  // The first delimiter opens the body or follows a preamble's line break.
  size_t at = first.size();
  if (body.substr(0, first.size()) != first) {
    at = body.find(between);
    if (at == std::string_view::npos) bad_form("holds no part (no boundary line)");
    at += between.size();
  }
  std::vector<FormPart> parts;
  for (;;) {
    if (body.compare(at, 2, "--") == 0) break;  // the closing delimiter
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.compare(at, 2, "\r\n") != 0) bad_form("has a boundary line that does not end in CRLF");
    FormPart part;
    at = read_part_head(body, at + 2, part);
    const size_t end = body.find(between, at);
    if (end == std::string_view::npos) bad_form("ends before its closing boundary");
    part.body = body.substr(at, end - at);
    parts.push_back(std::move(part));
    at = end + between.size();
  }
  if (parts.empty()) bad_form("holds no part");
  return parts;
}

std::string form_upload(std::string_view body, const std::string& boundary) {
  const std::vector<FormPart> parts = form_parts(body, boundary);
  const FormPart* chosen = nullptr;
  for (const auto& p : parts) {
    if (!chosen && (p.name == "data" || p.name == "file" || p.name == "image")) chosen = &p;
  }
  for (const auto& p : parts) {
    if (!chosen && (!p.filename.empty() || !p.content_type.empty())) chosen = &p;
  }
  if (!chosen) chosen = &parts.front();
  if (chosen->body.empty()) {
    throw RequestError(400, "the form's file is empty (send the image in a field named data or file)");
  }
  return std::string(chosen->body);
}

}  // namespace tabby::serve
