// Confusion-matrix heatmap: counts in cells, class names on both axes, a
// colour bar for the scale.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tabby/report/chart.h"
#include "tabby/report/chart_canvas.h"
#include "tabby/report/ticks.h"
#include "tabby/util/error.h"

namespace tabby::report {

using namespace detail;

namespace {

constexpr double kMaxRowLabel = 170;     // px; longer class names get an ellipsis
constexpr double kMaxColumnLabel = 150;  // px, along the rotated text
constexpr double kSin45 = 0.70710678;

int auto_cell_size(int n) {
  if (n <= 2) return 120;
  if (n <= 4) return 96;
  if (n <= 8) return 72;
  if (n <= 12) return 58;
  return std::max(22, 680 / n);
}

}  // namespace

Chart draw_confusion_matrix(const std::vector<int64_t>& counts, const std::vector<std::string>& class_names,
                            ChartFormat format, const std::string& title, int width, int height) {
  int n = static_cast<int>(class_names.size());
  std::vector<std::string> names = class_names;
  if (names.empty()) {
    n = static_cast<int>(std::lround(std::sqrt(static_cast<double>(counts.size()))));
    for (int i = 0; i < n; ++i) names.push_back(std::to_string(i));
  }
  if (n < 1 || counts.size() != static_cast<size_t>(n) * n) {
    throw Error(fmt::format("confusion matrix chart: {} counts do not fill a {}x{} matrix", counts.size(), n, n),
                "pass num_classes * num_classes counts and one name per class");
  }
  int64_t max_count = 0;
  for (int64_t c : counts) max_count = std::max(max_count, c);

  // Text is measured on a scratch canvas: the real one needs the final size.
  Canvas probe(ChartFormat::png, 1, 1);
  probe.set_font(17, true);
  const double title_h = title.empty() ? 0 : probe.line_height() + 8;
  probe.set_font(13, true);
  const double axis_label_h = probe.line_height();
  probe.set_font(12);
  const double name_h = probe.line_height();
  double widest_name = 0;
  for (const auto& name : names) widest_name = std::max(widest_name, probe.text_width(name));
  const double row_label_w = std::min(widest_name, kMaxRowLabel);
  const double rotated_w = std::min(widest_name, kMaxColumnLabel);
  const Ticks scale_ticks = nice_ticks(0, std::max<double>(max_count, 1), 5, true);
  double scale_label_w = 0;
  for (double v : scale_ticks.values) scale_label_w = std::max(scale_label_w, probe.text_width(format_tick(v, 0)));

  const double top = 14 + title_h + 6;
  const double left_fixed = 12 + axis_label_h + 10 + row_label_w + 8;
  const double right = 18 + 16 + 6 + scale_label_w + 14;
  auto bottom_for = [&](bool rotated) {
    const double labels = rotated ? (rotated_w + name_h / 2) * kSin45 + 4 : name_h;
    return 6 + labels + 10 + axis_label_h + 12;
  };
  // Rotated column labels hang down-left from their column and may need
  // more room on the left than the row labels do.
  auto left_for = [&](bool rotated, double cell) {
    return rotated ? std::max(left_fixed, 12 + (rotated_w + name_h) * kSin45 - cell / 2) : left_fixed;
  };

  double cell = auto_cell_size(n);
  bool rotated = widest_name > cell - 8;
  if (width > 0 && height > 0) {
    for (int pass = 0; pass < 2; ++pass) {
      const double avail_w = width - left_for(rotated, cell) - right;
      const double avail_h = height - top - bottom_for(rotated);
      cell = std::max(4.0, std::floor(std::min(avail_w, avail_h) / n));
      rotated = widest_name > cell - 8;
    }
  } else {
    width = static_cast<int>(std::ceil(left_for(rotated, cell) + n * cell + right));
    height = static_cast<int>(std::ceil(top + n * cell + bottom_for(rotated)));
  }

  Canvas canvas(format, width, height);
  cairo_t* cr = canvas.cr();
  const double left = left_for(rotated, cell);
  const double grid_size = n * cell;
  // Centre the matrix in whatever room a fixed canvas size leaves.
  const double spare_w = std::max(0.0, width - left - grid_size - right);
  const double spare_h = std::max(0.0, height - top - grid_size - bottom_for(rotated));
  const Rect grid{std::round(left + spare_w / 2), std::round(top + spare_h / 2), grid_size, grid_size};

  if (!title.empty()) {
    canvas.set_font(17, true);
    canvas.set_color(kText);
    canvas.text(canvas.fit(title, width - 20), width / 2.0, 14, HAlign::center, VAlign::top);
  }

  // ---- cells with counts
  std::vector<std::string> count_text;
  for (int64_t c : counts) count_text.push_back(std::to_string(c));
  double count_font = std::clamp(cell * 0.28, 8.0, 16.0);
  canvas.set_font(count_font, true);
  double widest_count = 0;
  for (const auto& t : count_text) widest_count = std::max(widest_count, canvas.text_width(t));
  if (widest_count > cell - 6) count_font *= (cell - 6) / widest_count;
  const bool show_counts = count_font >= 6;
  canvas.set_font(count_font, true);
  for (int t = 0; t < n; ++t) {
    for (int p = 0; p < n; ++p) {
      const int64_t c = counts[static_cast<size_t>(t) * n + p];
      const Rgb color = blues(max_count > 0 ? static_cast<double>(c) / max_count : 0);
      const Rect r{grid.x + p * cell, grid.y + t * cell, cell, cell};
      canvas.fill_rect(r, color);
      if (show_counts) {
        canvas.set_color(luminance(color) > 0.35 ? kText : Rgb{1, 1, 1});
        canvas.text(count_text[static_cast<size_t>(t) * n + p], r.x + cell / 2, r.y + cell / 2, HAlign::center,
                    VAlign::middle);
      }
    }
  }
  // Thin white lines between cells keep equal colours apart; a frame around all.
  for (int i = 1; i < n; ++i) {
    canvas.line(grid.x + i * cell, grid.y, grid.x + i * cell, grid.bottom(), {1, 1, 1}, 1);
    canvas.line(grid.x, grid.y + i * cell, grid.right(), grid.y + i * cell, {1, 1, 1}, 1);
  }
  canvas.stroke_rect(grid, kAxis, 1);

  // ---- class names
  canvas.set_font(12);
  canvas.set_color(kText);
  for (int i = 0; i < n; ++i) {
    const double center = grid.y + (i + 0.5) * cell;
    canvas.text(canvas.fit(names[i], kMaxRowLabel), grid.x - 8, center, HAlign::right, VAlign::middle);
    const double cx = grid.x + (i + 0.5) * cell;
    if (rotated) {
      canvas.text(canvas.fit(names[i], kMaxColumnLabel), cx + 3, grid.bottom() + 6, HAlign::right, VAlign::middle,
                  -45);
    } else {
      canvas.text(names[i], cx, grid.bottom() + 6, HAlign::center, VAlign::top);
    }
  }
  const double names_bottom = grid.bottom() + bottom_for(rotated) - (10 + axis_label_h + 12);
  canvas.set_font(13, true);
  canvas.text("Predicted", grid.x + grid.w / 2, names_bottom + 10, HAlign::center, VAlign::top);
  canvas.text("True", grid.x - 8 - row_label_w - 10, grid.y + grid.h / 2, HAlign::center, VAlign::bottom, -90);

  // ---- colour bar
  const Rect bar{grid.right() + 18, grid.y, 16, grid.h};
  cairo_pattern_t* gradient = cairo_pattern_create_linear(0, bar.bottom(), 0, bar.y);
  for (int i = 0; i <= 8; ++i) {
    const Rgb c = blues(i / 8.0);
    cairo_pattern_add_color_stop_rgb(gradient, i / 8.0, c.r, c.g, c.b);
  }
  cairo_rectangle(cr, bar.x, bar.y, bar.w, bar.h);
  cairo_set_source(cr, gradient);
  cairo_fill(cr);
  cairo_pattern_destroy(gradient);
  canvas.stroke_rect(bar, kAxis, 1);
  canvas.set_font(11);
  const double scale_max = std::max<double>(max_count, 1);
  for (double v : scale_ticks.values) {
    const double y = bar.bottom() - v / scale_max * bar.h;
    canvas.line(bar.right(), y, bar.right() + 4, y, kAxis, 1);
    canvas.set_color(kText);
    canvas.text(format_tick(v, 0), bar.right() + 6, y, HAlign::left, VAlign::middle);
  }
  return canvas.finish();
}

void render_confusion_matrix(const std::vector<int64_t>& counts, const std::vector<std::string>& class_names,
                             const fs::path& out, const std::string& title, int width, int height) {
  save_chart(draw_confusion_matrix(counts, class_names, chart_format_for(out), title, width, height), out);
}

}  // namespace tabby::report
