// Line charts: training curves per epoch, one or several runs overlaid.
#include <algorithm>
#include <cmath>
#include <limits>

#include "tabby/report/chart.h"
#include "tabby/report/chart_canvas.h"
#include "tabby/report/ticks.h"

namespace tabby::report {

using namespace detail;

namespace {

struct Point {
  double x, y;
};

// A series split at its non-finite points: each run is drawn as one
// polyline, so a gap in the data shows as a gap in the line.
std::vector<std::vector<Point>> finite_runs(const Series& s) {
  std::vector<std::vector<Point>> runs(1);
  const size_t n = std::min(s.x.size(), s.y.size());
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
      runs.back().push_back({s.x[i], s.y[i]});
    } else if (!runs.back().empty()) {
      runs.emplace_back();
    }
  }
  if (runs.back().empty()) runs.pop_back();
  return runs;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool valid() const { return lo <= hi; }
};

// Series with at most this many points show a marker at each point.
constexpr size_t kMaxMarkedPoints = 30;

void draw_marker(Canvas& canvas, double x, double y, double radius, Rgb color, bool hollow) {
  cairo_t* cr = canvas.cr();
  cairo_new_sub_path(cr);
  cairo_arc(cr, x, y, radius, 0, 2 * M_PI);
  // Dashed (validation) series get hollow markers, so two series that
  // coincide stay distinguishable.
  if (hollow) {
    canvas.set_color({1, 1, 1});
    cairo_fill_preserve(cr);
    canvas.set_color(color);
    cairo_set_line_width(cr, 1.6);
    cairo_stroke(cr);
  } else {
    canvas.set_color(color);
    cairo_fill(cr);
  }
}

void set_dash(cairo_t* cr, bool dashed) {
  static const double kDash[] = {7.0, 4.0};
  cairo_set_dash(cr, kDash, dashed ? 2 : 0, 0);
}

}  // namespace

Chart draw_line_chart(const LineChart& chart, ChartFormat format, int width, int height) {
  Canvas canvas(format, width, height);
  cairo_t* cr = canvas.cr();

  // ---- data ranges
  std::vector<std::vector<std::vector<Point>>> runs;
  Range xr, yr;
  bool whole_x = true;
  size_t finite_count = 0;
  for (const auto& s : chart.series) {
    runs.push_back(finite_runs(s));
    for (const auto& run : runs.back()) {
      for (const auto& p : run) {
        xr.add(p.x);
        yr.add(p.y);
        whole_x = whole_x && p.x == std::round(p.x);
        ++finite_count;
      }
    }
  }
  const bool has_data = finite_count > 0;
  if (!has_data) {
    xr = {0, 1};
    yr = {0, 1};
    whole_x = false;
  }

  double x0 = xr.lo, x1 = xr.hi;
  if (x1 - x0 <= 0) {
    x0 -= whole_x ? 1 : 0.5;
    x1 += whole_x ? 1 : 0.5;
  }
  const double x_pad = (x1 - x0) * 0.03;
  x0 -= x_pad;
  x1 += x_pad;

  double y0 = yr.lo, y1 = yr.hi;
  if (y1 - y0 <= 0) {
    const double spread = std::max(std::abs(y0) * 0.05, 0.05);
    y0 -= spread;
    y1 += spread;
  }
  const double y_pad = (y1 - y0) * 0.05;
  y0 = chart.y_min.value_or(y0 - y_pad);
  y1 = chart.y_max.value_or(y1 + y_pad);
  if (!(y1 > y0)) y1 = y0 + 1;  // contradictory fixed limits: still draw something

  // ---- layout: top and bottom first, then y ticks decide the left margin
  canvas.set_font(17, true);
  const double title_h = chart.title.empty() ? 0 : canvas.line_height() + 8;
  canvas.set_font(12);
  const double subtitle_h = chart.subtitle.empty() ? 0 : canvas.line_height() + 6;
  const double tick_h = canvas.line_height();
  canvas.set_font(13);
  const double label_h = canvas.line_height();

  Rect plot;
  plot.y = 14 + title_h + subtitle_h;
  const double bottom_margin = 6 + tick_h + 6 + (chart.x_label.empty() ? 0 : label_h + 4) + 10;
  plot.h = std::max(10.0, height - plot.y - bottom_margin);

  const Ticks y_ticks = nice_ticks(y0, y1, std::clamp(static_cast<int>(plot.h / 55), 3, 10));
  canvas.set_font(12);
  double y_tick_w = 0;
  for (double v : y_ticks.values) y_tick_w = std::max(y_tick_w, canvas.text_width(format_tick(v, y_ticks.decimals)));
  plot.x = 12 + (chart.y_label.empty() ? 0 : label_h + 8) + y_tick_w + 8;

  // ---- legend: inside the corner that covers the fewest data points, else outside on the right
  std::vector<size_t> legend_entries;
  for (size_t i = 0; i < chart.series.size(); ++i) {
    if (!chart.series[i].label.empty()) legend_entries.push_back(i);
  }
  const double sample_w = 26, row_h = 20, pad = 8;
  double label_w = 0;
  canvas.set_font(12);
  std::vector<std::string> legend_labels;
  for (size_t i : legend_entries) {
    legend_labels.push_back(canvas.fit(chart.series[i].label, width * 0.4));
    label_w = std::max(label_w, canvas.text_width(legend_labels.back()));
  }
  const double legend_w = pad + sample_w + 6 + label_w + pad;
  const double legend_h = pad / 2 + row_h * legend_entries.size() + pad / 2;

  auto to_px = [&](const Rect& area, double x, double y) {
    return Point{area.x + (x - x0) / (x1 - x0) * area.w, area.bottom() - (y - y0) / (y1 - y0) * area.h};
  };
  // Counts how much of the drawn data (points and line segments, sampled
  // every few pixels) would fall under a legend box.
  auto covered = [&](const Rect& area, const Rect& box) {
    size_t hits = 0;
    const Rect guard{box.x - 4, box.y - 4, box.w + 8, box.h + 8};
    for (const auto& series_runs : runs) {
      for (const auto& run : series_runs) {
        for (size_t i = 0; i < run.size(); ++i) {
          const Point a = to_px(area, run[i].x, run[i].y);
          hits += guard.contains(a.x, a.y);
          if (i + 1 == run.size()) continue;
          const Point b = to_px(area, run[i + 1].x, run[i + 1].y);
          const int steps = static_cast<int>(std::hypot(b.x - a.x, b.y - a.y) / 3);
          for (int k = 1; k < steps; ++k) {
            const double t = static_cast<double>(k) / steps;
            hits += guard.contains(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t);
          }
        }
      }
    }
    return hits;
  };

  Rect legend_box;
  plot.w = std::max(10.0, width - plot.x - 20);
  if (!legend_entries.empty()) {
    const double inset = 8;
    const Rect corners[] = {
        {plot.right() - inset - legend_w, plot.y + inset, legend_w, legend_h},                   // top right
        {plot.right() - inset - legend_w, plot.bottom() - inset - legend_h, legend_w, legend_h},  // bottom right
        {plot.x + inset, plot.y + inset, legend_w, legend_h},                                     // top left
        {plot.x + inset, plot.bottom() - inset - legend_h, legend_w, legend_h},                   // bottom left
    };
    size_t best_hits = std::numeric_limits<size_t>::max();
    for (const Rect& corner : corners) {
      const size_t hits = covered(plot, corner);
      if (hits < best_hits) {
        best_hits = hits;
        legend_box = corner;
      }
    }
    const bool fits_inside = legend_w + 2 * inset < plot.w && legend_h + 2 * inset < plot.h;
    if (best_hits > 0 || !fits_inside) {
      plot.w = std::max(10.0, width - plot.x - legend_w - 24);
      legend_box = {plot.right() + 12, plot.y, legend_w, legend_h};
    }
  }

  const Ticks x_ticks = nice_ticks(x0, x1, std::clamp(static_cast<int>(plot.w / 80), 2, 12), whole_x);

  // ---- title
  if (!chart.title.empty()) {
    canvas.set_font(17, true);
    canvas.set_color(kText);
    canvas.text(canvas.fit(chart.title, width - 20), width / 2.0, 14, HAlign::center, VAlign::top);
  }
  if (!chart.subtitle.empty()) {
    canvas.set_font(12);
    canvas.set_color(kMuted);
    canvas.text(canvas.fit(chart.subtitle, width - 20), width / 2.0, 14 + title_h, HAlign::center, VAlign::top);
  }

  // ---- grid, axes, ticks
  canvas.set_font(12);
  for (double v : y_ticks.values) {
    const double y = std::round(to_px(plot, x0, v).y) + 0.5;
    canvas.line(plot.x, y, plot.right(), y, kGrid, 1);
    canvas.line(plot.x - 4, y, plot.x, y, kAxis, 1);
    canvas.set_color(kText);
    canvas.text(format_tick(v, y_ticks.decimals), plot.x - 7, y, HAlign::right, VAlign::middle);
  }
  for (double v : x_ticks.values) {
    const double x = std::round(to_px(plot, v, y0).x) + 0.5;
    canvas.line(x, plot.y, x, plot.bottom(), kGrid, 1);
    canvas.line(x, plot.bottom(), x, plot.bottom() + 4, kAxis, 1);
    canvas.set_color(kText);
    canvas.text(format_tick(v, x_ticks.decimals), x, plot.bottom() + 6, HAlign::center, VAlign::top);
  }
  canvas.line(plot.x, plot.bottom() + 0.5, plot.right(), plot.bottom() + 0.5, kAxis, 1);
  canvas.line(plot.x - 0.5, plot.y, plot.x - 0.5, plot.bottom(), kAxis, 1);

  canvas.set_font(13);
  canvas.set_color(kText);
  if (!chart.x_label.empty()) {
    canvas.text(canvas.fit(chart.x_label, plot.w), plot.x + plot.w / 2, plot.bottom() + 6 + tick_h + 6,
                HAlign::center, VAlign::top);
  }
  if (!chart.y_label.empty()) {
    canvas.text(canvas.fit(chart.y_label, plot.h), 12, plot.y + plot.h / 2, HAlign::center, VAlign::top, -90);
  }

  // ---- data
  cairo_save(cr);
  // A little slack so markers on the axis limits are not cut in half.
  cairo_rectangle(cr, plot.x - 4, plot.y - 4, plot.w + 8, plot.h + 8);
  cairo_clip(cr);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    const Rgb color = palette_color(s.color.value_or(static_cast<int>(i)));
    size_t points = 0;
    for (const auto& run : runs[i]) points += run.size();
    const bool markers = points <= kMaxMarkedPoints;
    for (const auto& run : runs[i]) {
      if (run.size() > 1) {
        canvas.set_color(color);
        cairo_set_line_width(cr, 2.2);
        set_dash(cr, s.dashed);
        for (size_t k = 0; k < run.size(); ++k) {
          const Point p = to_px(plot, run[k].x, run[k].y);
          if (k == 0) cairo_move_to(cr, p.x, p.y);
          else cairo_line_to(cr, p.x, p.y);
        }
        cairo_stroke(cr);
        set_dash(cr, false);
      }
      if (markers || run.size() == 1) {
        const double radius = run.size() == 1 ? 4.5 : 3.2;
        for (const auto& pt : run) {
          const Point p = to_px(plot, pt.x, pt.y);
          draw_marker(canvas, p.x, p.y, radius, color, s.dashed);
        }
      }
    }
  }
  cairo_restore(cr);

  if (!has_data) {
    canvas.set_font(14);
    canvas.set_color(kMuted);
    canvas.text("no data", plot.x + plot.w / 2, plot.y + plot.h / 2, HAlign::center, VAlign::middle);
  }

  // ---- legend
  if (!legend_entries.empty()) {
    canvas.set_color({1, 1, 1}, 0.92);
    cairo_rectangle(cr, legend_box.x, legend_box.y, legend_box.w, legend_box.h);
    cairo_fill(cr);
    canvas.stroke_rect(legend_box, {0.8, 0.81, 0.84}, 1);
    canvas.set_font(12);
    for (size_t e = 0; e < legend_entries.size(); ++e) {
      const Series& s = chart.series[legend_entries[e]];
      const Rgb color = palette_color(s.color.value_or(static_cast<int>(legend_entries[e])));
      const double cy = legend_box.y + pad / 2 + row_h * (e + 0.5);
      const double sx = legend_box.x + pad;
      canvas.set_color(color);
      cairo_set_line_width(cr, 2.2);
      set_dash(cr, s.dashed);
      cairo_move_to(cr, sx, cy);
      cairo_line_to(cr, sx + sample_w, cy);
      cairo_stroke(cr);
      set_dash(cr, false);
      size_t points = 0;
      for (const auto& run : runs[legend_entries[e]]) points += run.size();
      if (points > 0 && points <= kMaxMarkedPoints) draw_marker(canvas, sx + sample_w / 2, cy, 3.2, color, s.dashed);
      canvas.set_color(kText);
      canvas.text(legend_labels[e], sx + sample_w + 6, cy, HAlign::left, VAlign::middle);
    }
  }
  return canvas.finish();
}

void render_line_chart(const LineChart& chart, const fs::path& out, int width, int height) {
  save_chart(draw_line_chart(chart, chart_format_for(out), width, height), out);
}

}  // namespace tabby::report
