// Self-contained HTML report builder.
#include "tabby/report/html.h"

#include <fmt/format.h>

#include <cctype>

#include "tabby/report/base64.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

#ifndef TABBY_VERSION
#define TABBY_VERSION "dev"
#endif

namespace tabby::report {

namespace {

// Inline only: the page must render identically offline. Fonts are the
// reader's own system fonts.
constexpr const char* kStyle = R"css(
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --accent:#2f6db5; --bg:#ffffff; --panel:#f5f7fa; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 32px 48px; }
header { border-bottom: 2px solid var(--accent); margin-bottom: 18px; padding-bottom: 8px; }
h1 { font-size: 28px; margin: 0 0 4px; }
.subtitle { color: var(--muted); margin: 0; }
h2 { font-size: 21px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 17px; margin: 22px 0 8px; }
nav.toc { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 18px; }
nav.toc h2 { font-size: 15px; margin: 0 0 4px; border: 0; padding: 0; }
nav.toc ol { margin: 0; padding-left: 20px; columns: 2; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--panel); font-weight: 600; }
td.num { text-align: right; white-space: nowrap; }
table.kv th { background: none; color: var(--muted); font-weight: 500; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: 4px; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
      overflow-x: auto; font: 13px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 8px 12px; margin: 10px 0; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.figures figure { flex: 1 1 420px; min-width: 0; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
)css";

// An anchor id from a title: lower-case ASCII letters and digits, '-' between
// words, prefixed with the section number so ids are unique.
std::string section_id(size_t index, const std::string& title) {
  std::string slug;
  for (unsigned char c : title) {
    if (std::isalnum(c) && c < 128) {
      slug += static_cast<char>(std::tolower(c));
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return fmt::format("s{}", index + 1) + (slug.empty() ? "" : "-" + slug);
}

// "0.93", "-1.5e-3", "1,234", "12%", "224x224" read better right-aligned.
bool looks_numeric(const std::string& cell) {
  if (cell.empty()) return false;
  bool digit = false;
  for (unsigned char c : cell) {
    if (std::isdigit(c)) digit = true;
    else if (!(c == '.' || c == '-' || c == '+' || c == ',' || c == '%' || c == 'e' || c == 'E' || c == 'x' ||
               c == ' '))
      return false;
  }
  return digit;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string image_mime_for(const fs::path& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".bmp") return "image/bmp";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".webp") return "image/webp";
  return {};
}

HtmlImage image_from_file(const fs::path& path, std::string alt, std::string caption) {
  std::string mime = image_mime_for(path);
  if (mime.empty()) {
    throw Error("cannot embed '" + path.string() + "' in the report: not a PNG, JPEG, GIF, BMP, SVG or WebP file",
                "give an image file with one of those extensions");
  }
  return HtmlImage{read_file(path), std::move(mime), std::move(alt), std::move(caption)};
}

HtmlReport::HtmlReport(std::string title, std::string subtitle)
    : title_(std::move(title)), subtitle_(std::move(subtitle)) {}

void HtmlReport::add_section(const std::string& title) {
  Section s{section_id(sections_.size(), title), title};
  // A section ends where the next one starts (or at the end of the page).
  if (!sections_.empty()) body_ += "</section>\n";
  body_ += fmt::format("<section id=\"{}\">\n<h2>{}</h2>\n", s.id, html_escape(title));
  sections_.push_back(std::move(s));
}

void HtmlReport::add_heading(const std::string& text) { body_ += "<h3>" + html_escape(text) + "</h3>\n"; }

void HtmlReport::add_paragraph(const std::string& text) { body_ += "<p>" + html_escape(text) + "</p>\n"; }

void HtmlReport::add_note(const std::string& text) {
  body_ += "<div class=\"note\">" + html_escape(text) + "</div>\n";
}

void HtmlReport::add_key_values(const std::vector<std::pair<std::string, std::string>>& items) {
  body_ += "<table class=\"kv\">\n";
  for (const auto& [key, value] : items) {
    body_ += "<tr><th scope=\"row\">" + html_escape(key) + "</th><td>" + html_escape(value) + "</td></tr>\n";
  }
  body_ += "</table>\n";
}

void HtmlReport::add_table(const std::vector<std::string>& headers,
                           const std::vector<std::vector<std::string>>& rows, const std::string& caption) {
  body_ += "<table>\n";
  if (!caption.empty()) body_ += "<caption>" + html_escape(caption) + "</caption>\n";
  if (!headers.empty()) {
    body_ += "<thead><tr>";
    for (const auto& h : headers) body_ += "<th>" + html_escape(h) + "</th>";
    body_ += "</tr></thead>\n";
  }
  body_ += "<tbody>\n";
  for (const auto& row : rows) {
    body_ += "<tr>";
    const size_t cells = std::max(row.size(), headers.size());
    for (size_t i = 0; i < cells; ++i) {
      const std::string cell = i < row.size() ? row[i] : std::string();
      body_ += looks_numeric(cell) ? "<td class=\"num\">" : "<td>";
      body_ += html_escape(cell) + "</td>";
    }
    body_ += "</tr>\n";
  }
  body_ += "</tbody>\n</table>\n";
}

void HtmlReport::add_preformatted(const std::string& text) {
  body_ += "<pre>" + html_escape(text) + "</pre>\n";
}

std::string HtmlReport::figure(const HtmlImage& image) const {
  std::string out = "<figure><img src=\"" + data_uri(image.mime, image.bytes) + "\" alt=\"" +
                    html_escape(image.alt) + "\">";
  if (!image.caption.empty()) out += "<figcaption>" + html_escape(image.caption) + "</figcaption>";
  return out + "</figure>\n";
}

void HtmlReport::add_image(const HtmlImage& image) { body_ += figure(image); }

void HtmlReport::add_image_png(std::string_view png_bytes, const std::string& alt, const std::string& caption) {
  add_image(HtmlImage{std::string(png_bytes), "image/png", alt, caption});
}

void HtmlReport::add_image_file(const fs::path& path, const std::string& alt, const std::string& caption) {
  add_image(image_from_file(path, alt, caption));
}

void HtmlReport::add_images(const std::vector<HtmlImage>& images) {
  body_ += "<div class=\"figures\">\n";
  for (const auto& image : images) body_ += figure(image);
  body_ += "</div>\n";
}

std::string HtmlReport::html() const {
  std::string out;
  out.reserve(body_.size() + 8192);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  // Tells the browser the page may load nothing but its own inline style and
  // embedded images: a stray external link would show up as an error.
  out += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
         "style-src 'unsafe-inline'\">\n";
  out += "<meta name=\"generator\" content=\"tabby " TABBY_VERSION "\">\n";
  out += "<title>" + html_escape(title_) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<main>\n";
  out += "<header><h1>" + html_escape(title_) + "</h1>";
  if (!subtitle_.empty()) out += "<p class=\"subtitle\">" + html_escape(subtitle_) + "</p>";
  out += "</header>\n";
  if (sections_.size() > 1) {
    out += "<nav class=\"toc\"><h2>Contents</h2><ol>\n";
    for (const auto& s : sections_) {
      out += "<li><a href=\"#" + s.id + "\">" + html_escape(s.title) + "</a></li>\n";
    }
    out += "</ol></nav>\n";
  }
  out += body_;
  if (!sections_.empty()) out += "</section>\n";
  out += "<footer>Generated by tabby " TABBY_VERSION "</footer>\n</main>\n</body>\n</html>\n";
  return out;
}

void HtmlReport::write(const fs::path& path) const { write_file_atomic(path, html()); }

}  // namespace tabby::report
