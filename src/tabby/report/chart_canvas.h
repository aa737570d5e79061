// Internal to the chart renderers: a cairo drawing surface that becomes a PNG
// or SVG file in memory, with text helpers (measure, align, rotate, shorten)
// and the colours all charts share. Include only from chart_*.cpp (built only
// when cairo is available).
#pragma once

#include <cairo.h>

#include <string>

#include "tabby/report/chart.h"

namespace tabby::report::detail {

struct Rgb {
  double r = 0, g = 0, b = 0;
};

Rgb rgb_hex(unsigned hex);
// Matplotlib's "tab10" colours, cycling.
Rgb palette_color(int index);
// White to dark blue (ColorBrewer "Blues"), t in [0, 1].
Rgb blues(double t);
// Relative luminance in [0, 1], to pick black or white text on a colour.
double luminance(Rgb c);

const Rgb kText = {0.13, 0.14, 0.17};
const Rgb kMuted = {0.38, 0.40, 0.45};
const Rgb kGrid = {0.88, 0.89, 0.91};
const Rgb kAxis = {0.45, 0.47, 0.52};
const Rgb kCorrect = {0.10, 0.55, 0.20};
const Rgb kWrong = {0.80, 0.12, 0.12};

enum class HAlign { left, center, right };
enum class VAlign { top, middle, baseline, bottom };

struct Rect {
  double x = 0, y = 0, w = 0, h = 0;
  double right() const { return x + w; }
  double bottom() const { return y + h; }
  bool contains(double px, double py) const { return px >= x && px <= x + w && py >= y && py <= y + h; }
};

class Canvas {
 public:
  // White background. tabby::Error when the size is out of range (1..20000)
  // or cairo cannot create the surface.
  Canvas(ChartFormat format, int width, int height);
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  cairo_t* cr() const { return cr_; }
  int width() const { return width_; }
  int height() const { return height_; }

  void set_color(Rgb c, double alpha = 1.0);
  void set_font(double size, bool bold = false);
  // Width of `text` in the current font.
  double text_width(const std::string& text);
  // Line height (ascent + descent) of the current font.
  double line_height();
  // Draws text anchored at (x, y), rotated about that point by
  // `angle_degrees` clockwise on screen (-90: reads bottom to top).
  void text(const std::string& text, double x, double y, HAlign h = HAlign::left, VAlign v = VAlign::baseline,
            double angle_degrees = 0);
  // `text` shortened with an ellipsis to fit max_width (whole UTF-8 characters).
  std::string fit(const std::string& text, double max_width);

  void fill_rect(const Rect& r, Rgb c);
  void stroke_rect(const Rect& r, Rgb c, double line_width);
  void line(double x0, double y0, double x1, double y1, Rgb c, double line_width);

  // Encodes the drawing; the canvas must not be drawn on afterwards.
  Chart finish();

 private:
  ChartFormat format_;
  int width_;
  int height_;
  std::string svg_bytes_;
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
};

// A cairo image surface holding `image` scaled (aspect kept) to fit within
// box_w x box_h; the caller destroys it. nullptr for an empty image.
cairo_surface_t* scaled_image_surface(const Image& image, int box_w, int box_h);

// Draws `image` fitted and centred in `box`; a grey placeholder when empty.
void draw_image_fitted(Canvas& canvas, const Image& image, const Rect& box);

}  // namespace tabby::report::detail
