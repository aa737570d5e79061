// The cairo canvas shared by all charts: PNG or SVG output, text, colours.
#include "tabby/report/chart_canvas.h"

#include <cairo-svg.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "tabby/util/error.h"

namespace tabby::report::detail {

namespace {

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

// cairo refuses invalid UTF-8 by putting the whole context into an error
// state, after which nothing more is drawn. Class and file names can hold
// any bytes, so every string is cleaned first: each byte that does not start
// a well-formed sequence becomes U+FFFD.
std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    bool ok = len > 0 && i + len <= n && c != 0;
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = p[i + k];
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(text, i, len);
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

Rgb mix(Rgb a, Rgb b, double t) { return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t}; }

}  // namespace

Rgb rgb_hex(unsigned hex) {
  return {((hex >> 16) & 0xFF) / 255.0, ((hex >> 8) & 0xFF) / 255.0, (hex & 0xFF) / 255.0};
}

Rgb palette_color(int index) {
  static const unsigned kTab10[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                    0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
  const int n = static_cast<int>(sizeof(kTab10) / sizeof(kTab10[0]));
  return rgb_hex(kTab10[((index % n) + n) % n]);
}

Rgb blues(double t) {
  static const unsigned kStops[] = {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                    0x4292c6, 0x2171b5, 0x08519c, 0x08306b};
  const int last = static_cast<int>(sizeof(kStops) / sizeof(kStops[0])) - 1;
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, 0.0, 1.0) * last;
  const int i = std::min(static_cast<int>(t), last - 1);
  return mix(rgb_hex(kStops[i]), rgb_hex(kStops[i + 1]), t - i);
}

double luminance(Rgb c) {
  auto linear = [](double v) { return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * linear(c.r) + 0.7152 * linear(c.g) + 0.0722 * linear(c.b);
}

Canvas::Canvas(ChartFormat format, int width, int height) : format_(format), width_(width), height_(height) {
  if (width < 1 || height < 1 || width > 20000 || height > 20000) {
    throw Error(fmt::format("chart size {}x{} is out of range", width, height),
                "use a width and height between 1 and 20000 pixels");
  }
  if (format == ChartFormat::png) {
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  } else {
    surface_ = cairo_svg_surface_create_for_stream(append_to_string, &svg_bytes_, width, height);
#if CAIRO_VERSION >= CAIRO_VERSION_ENCODE(1, 16, 0)
    // Pixels, so the SVG shows at the same size as the PNG would.
    cairo_svg_surface_set_document_unit(surface_, CAIRO_SVG_UNIT_PX);
#endif
  }
  if (cairo_surface_status(surface_) != CAIRO_STATUS_SUCCESS) {
    const std::string why = cairo_status_to_string(cairo_surface_status(surface_));
    cairo_surface_destroy(surface_);
    throw Error(fmt::format("cannot create a {}x{} chart: {}", width, height, why), "try a smaller chart size");
  }
  cr_ = cairo_create(surface_);
  cairo_set_source_rgb(cr_, 1, 1, 1);
  cairo_paint(cr_);
  cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
}

Canvas::~Canvas() {
  if (cr_) cairo_destroy(cr_);
  if (surface_) cairo_surface_destroy(surface_);
}

void Canvas::set_color(Rgb c, double alpha) { cairo_set_source_rgba(cr_, c.r, c.g, c.b, alpha); }

void Canvas::set_font(double size, bool bold) {
  cairo_select_font_face(cr_, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr_, size);
}

double Canvas::text_width(const std::string& text) {
  cairo_text_extents_t e;
  cairo_text_extents(cr_, valid_utf8(text).c_str(), &e);
  return e.x_advance;
}

double Canvas::line_height() {
  cairo_font_extents_t fe;
  cairo_font_extents(cr_, &fe);
  return fe.ascent + fe.descent;
}

void Canvas::text(const std::string& text, double x, double y, HAlign h, VAlign v, double angle_degrees) {
  if (text.empty()) return;
  cairo_font_extents_t fe;
  cairo_font_extents(cr_, &fe);
  const double w = text_width(text);
  double dx = h == HAlign::left ? 0 : h == HAlign::center ? -w / 2 : -w;
  // Font-wide ascent/descent (not this string's ink) so that labels in a row
  // share one baseline whatever letters they contain.
  double dy = 0;
  switch (v) {
    case VAlign::top: dy = fe.ascent; break;
    case VAlign::middle: dy = (fe.ascent - fe.descent) / 2; break;
    case VAlign::baseline: dy = 0; break;
    case VAlign::bottom: dy = -fe.descent; break;
  }
  cairo_save(cr_);
  cairo_translate(cr_, x, y);
  cairo_rotate(cr_, angle_degrees * M_PI / 180.0);
  cairo_move_to(cr_, dx, dy);
  cairo_show_text(cr_, valid_utf8(text).c_str());
  cairo_restore(cr_);
}

std::string Canvas::fit(const std::string& raw, double max_width) {
  const std::string text = valid_utf8(raw);
  if (text_width(text) <= max_width) return text;
  const std::string ellipsis = "\xE2\x80\xA6";  // U+2026
  std::string cut = text;
  while (!cut.empty()) {
    // Drop one whole UTF-8 character from the end.
    size_t end = cut.size() - 1;
    while (end > 0 && (static_cast<unsigned char>(cut[end]) & 0xC0) == 0x80) --end;
    cut.erase(end);
    if (text_width(cut + ellipsis) <= max_width) return cut + ellipsis;
  }
  return text_width(ellipsis) <= max_width ? ellipsis : std::string();
}

void Canvas::fill_rect(const Rect& r, Rgb c) {
  set_color(c);
  cairo_rectangle(cr_, r.x, r.y, r.w, r.h);
  cairo_fill(cr_);
}

void Canvas::stroke_rect(const Rect& r, Rgb c, double line_width) {
  set_color(c);
  cairo_set_line_width(cr_, line_width);
  cairo_rectangle(cr_, r.x, r.y, r.w, r.h);
  cairo_stroke(cr_);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, double line_width) {
  set_color(c);
  cairo_set_line_width(cr_, line_width);
  cairo_move_to(cr_, x0, y0);
  cairo_line_to(cr_, x1, y1);
  cairo_stroke(cr_);
}

Chart Canvas::finish() {
  // Any drawing error left the context unusable; better a clear failure than
  // a silently half-drawn chart.
  if (cairo_status(cr_) != CAIRO_STATUS_SUCCESS) {
    throw Error(std::string("drawing the chart failed: ") + cairo_status_to_string(cairo_status(cr_)));
  }
  Chart chart;
  chart.format = format_;
  chart.width = width_;
  chart.height = height_;
  cairo_destroy(cr_);
  cr_ = nullptr;
  cairo_status_t status;
  if (format_ == ChartFormat::png) {
    status = cairo_surface_write_to_png_stream(surface_, append_to_string, &chart.bytes);
  } else {
    cairo_surface_finish(surface_);
    status = cairo_surface_status(surface_);
    chart.bytes = std::move(svg_bytes_);
  }
  cairo_surface_destroy(surface_);
  surface_ = nullptr;
  if (status != CAIRO_STATUS_SUCCESS) {
    throw Error(std::string("cannot encode the chart: ") + cairo_status_to_string(status));
  }
  return chart;
}

cairo_surface_t* scaled_image_surface(const Image& image, int box_w, int box_h) {
  if (image.empty() || image.pixels.size() < static_cast<size_t>(image.width) * image.height * 3 || box_w < 1 ||
      box_h < 1) {
    return nullptr;
  }
  cairo_surface_t* source = cairo_image_surface_create(CAIRO_FORMAT_RGB24, image.width, image.height);
  if (cairo_surface_status(source) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(source);
    return nullptr;
  }
  cairo_surface_flush(source);
  unsigned char* data = cairo_image_surface_get_data(source);
  const int stride = cairo_image_surface_get_stride(source);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* in = image.row(y);
    // RGB24 is one native-endian 32-bit word per pixel: 0x00RRGGBB.
    uint32_t* out = reinterpret_cast<uint32_t*>(data + static_cast<size_t>(y) * stride);
    for (int x = 0; x < image.width; ++x) {
      out[x] = (uint32_t{in[3 * x]} << 16) | (uint32_t{in[3 * x + 1]} << 8) | in[3 * x + 2];
    }
  }
  cairo_surface_mark_dirty(source);

  const double scale = std::min(static_cast<double>(box_w) / image.width, static_cast<double>(box_h) / image.height);
  const int w = std::max(1, static_cast<int>(std::lround(image.width * scale)));
  const int h = std::max(1, static_cast<int>(std::lround(image.height * scale)));
  cairo_surface_t* scaled = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
  cairo_t* cr = cairo_create(scaled);
  cairo_scale(cr, static_cast<double>(w) / image.width, static_cast<double>(h) / image.height);
  cairo_set_source_surface(cr, source, 0, 0);
  // GOOD averages over the source pixels when shrinking (no aliasing).
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_GOOD);
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_destroy(source);
  if (cairo_surface_status(scaled) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(scaled);
    return nullptr;
  }
  return scaled;
}

void draw_image_fitted(Canvas& canvas, const Image& image, const Rect& box) {
  cairo_surface_t* scaled = scaled_image_surface(image, static_cast<int>(box.w), static_cast<int>(box.h));
  if (!scaled) {
    canvas.fill_rect(box, {0.92, 0.92, 0.93});
    canvas.set_color(kMuted);
    canvas.set_font(11);
    canvas.text("no image", box.x + box.w / 2, box.y + box.h / 2, HAlign::center, VAlign::middle);
    return;
  }
  const int w = cairo_image_surface_get_width(scaled), h = cairo_image_surface_get_height(scaled);
  // Whole-pixel placement keeps the PNG output sharp.
  const double x = std::round(box.x + (box.w - w) / 2), y = std::round(box.y + (box.h - h) / 2);
  cairo_t* cr = canvas.cr();
  cairo_save(cr);
  cairo_set_source_surface(cr, scaled, x, y);
  cairo_rectangle(cr, x, y, w, h);
  cairo_fill(cr);
  cairo_restore(cr);
  cairo_surface_destroy(scaled);
}

}  // namespace tabby::report::detail
