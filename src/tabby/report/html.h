// A builder for one self-contained HTML report file: headings, sections with a
// table of contents, paragraphs, tables, preformatted text and images embedded
// as base64 data URIs. The page loads nothing from anywhere (no fonts, scripts
// or stylesheets from the web; a Content-Security-Policy says so to the
// browser), so a report can be mailed or archived as one file.
//
// All text passed in is escaped: class names and file names may hold <, & or
// quotes.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tabby::report {

namespace fs = std::filesystem;

// Escapes &, <, >, " and ' for use in element text and attribute values.
std::string html_escape(std::string_view text);

struct HtmlImage {
  std::string bytes;  // the encoded file (PNG, JPEG, SVG, ...)
  std::string mime;   // "image/png", "image/svg+xml", ...
  std::string alt;
  std::string caption;  // shown under the image; may be empty
};

// The MIME type for an image file extension (.png .jpg .jpeg .gif .bmp .svg
// .webp), or "" when it is not an image type a browser shows.
std::string image_mime_for(const fs::path& path);

// Reads an image file into an HtmlImage; tabby::Error when it is unreadable or
// not an image type browsers show.
HtmlImage image_from_file(const fs::path& path, std::string alt, std::string caption = {});

class HtmlReport {
 public:
  explicit HtmlReport(std::string title, std::string subtitle = {});

  // A top-level section (<h2>) with an anchor; listed in the table of contents.
  void add_section(const std::string& title);
  // A sub-heading (<h3>) inside the current section.
  void add_heading(const std::string& text);
  void add_paragraph(const std::string& text);
  // A highlighted remark (warnings such as "120 files could not be read").
  void add_note(const std::string& text);
  // A two-column table of names and values.
  void add_key_values(const std::vector<std::pair<std::string, std::string>>& items);
  // Rows shorter than the header are padded with empty cells. Cells that look
  // numeric are right-aligned.
  void add_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows,
                 const std::string& caption = {});
  void add_preformatted(const std::string& text);

  void add_image(const HtmlImage& image);
  void add_image_png(std::string_view png_bytes, const std::string& alt, const std::string& caption = {});
  void add_image_file(const fs::path& path, const std::string& alt, const std::string& caption = {});
  // Several images side by side (wrapping on narrow screens), e.g. accuracy
  // and loss curves.
  void add_images(const std::vector<HtmlImage>& images);

  // The whole document.
  std::string html() const;
  // Writes html() atomically; tabby::Error when the file cannot be written.
  void write(const fs::path& path) const;

 private:
  struct Section {
    std::string id;
    std::string title;
  };
  std::string figure(const HtmlImage& image) const;

  std::string title_;
  std::string subtitle_;
  std::vector<Section> sections_;
  std::string body_;
};

}  // namespace tabby::report
