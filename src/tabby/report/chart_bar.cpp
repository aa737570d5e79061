// Horizontal bar charts (images per class, most common image sizes), each
// bar labelled with its value.
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

// Per bar when the height is chosen automatically: a few bars get thicker
// rows so a two-class chart is not a thin strip.
double auto_row_height(size_t bars) { return bars <= 4 ? 44 : 30; }

}  // namespace

Chart draw_bar_chart(const BarChart& chart, ChartFormat format, int width, int height) {
  if (chart.labels.size() != chart.values.size()) {
    throw Error(fmt::format("bar chart '{}': {} labels but {} values", chart.title, chart.labels.size(),
                            chart.values.size()),
                "pass one label per value");
  }
  const size_t n = chart.values.size();
  std::vector<double> values;
  for (double v : chart.values) values.push_back(std::isfinite(v) ? std::max(v, 0.0) : 0.0);
  const double max_value = n ? *std::max_element(values.begin(), values.end()) : 0;

  Canvas probe(ChartFormat::png, 1, 1);
  probe.set_font(17, true);
  const double title_h = chart.title.empty() ? 0 : probe.line_height() + 8;
  probe.set_font(13);
  const double axis_label_h = probe.line_height();
  probe.set_font(12);
  const double tick_h = probe.line_height();

  const double top = 14 + title_h + 4;
  const double bottom = 6 + tick_h + 6 + (chart.x_label.empty() ? 0 : axis_label_h + 4) + 10;
  if (height <= 0) height = static_cast<int>(std::ceil(top + std::max<size_t>(n, 2) * auto_row_height(n) + bottom));

  Canvas canvas(format, width, height);
  canvas.set_font(12);
  const double max_label_w = width * 0.4;
  std::vector<std::string> labels;
  double label_w = 0;
  for (const auto& l : chart.labels) {
    labels.push_back(canvas.fit(l, max_label_w));
    label_w = std::max(label_w, canvas.text_width(labels.back()));
  }

  Rect plot;
  plot.x = 12 + (chart.y_label.empty() ? 0 : axis_label_h + 8) + label_w + 8;
  plot.y = top;
  plot.w = std::max(10.0, width - plot.x - 20);
  plot.h = std::max(10.0, height - top - bottom);
  const double row_h = n ? plot.h / n : plot.h;

  // Stretch the value axis so the longest bar still has room for its label.
  canvas.set_font(11);
  double value_label_w = 0;
  for (double v : values) value_label_w = std::max(value_label_w, canvas.text_width(format_value(v)));
  double axis_max = max_value > 0 ? max_value : 1;
  const double room = plot.w - value_label_w - 8;
  if (room > plot.w * 0.3) axis_max = axis_max * plot.w / room;
  const bool whole = std::all_of(values.begin(), values.end(), [](double v) { return v == std::round(v); });
  const Ticks ticks = nice_ticks(0, axis_max, std::clamp(static_cast<int>(plot.w / 90), 2, 10), whole);
  auto x_of = [&](double v) { return plot.x + v / axis_max * plot.w; };

  if (!chart.title.empty()) {
    canvas.set_font(17, true);
    canvas.set_color(kText);
    canvas.text(canvas.fit(chart.title, width - 20), width / 2.0, 14, HAlign::center, VAlign::top);
  }

  canvas.set_font(12);
  for (double v : ticks.values) {
    const double x = std::round(x_of(v)) + 0.5;
    canvas.line(x, plot.y, x, plot.bottom(), kGrid, 1);
    canvas.line(x, plot.bottom(), x, plot.bottom() + 4, kAxis, 1);
    canvas.set_color(kText);
    canvas.text(format_tick(v, ticks.decimals), x, plot.bottom() + 6, HAlign::center, VAlign::top);
  }

  const double bar_h = std::max(1.0, std::min(row_h * 0.7, 30.0));
  for (size_t i = 0; i < n; ++i) {
    const double cy = plot.y + (i + 0.5) * row_h;
    const Rect bar{plot.x, cy - bar_h / 2, x_of(values[i]) - plot.x, bar_h};
    canvas.fill_rect(bar, palette_color(0));
    canvas.set_font(12);
    canvas.set_color(kText);
    canvas.text(labels[i], plot.x - 8, cy, HAlign::right, VAlign::middle);
    canvas.set_font(11);
    canvas.text(format_value(values[i]), bar.right() + 4, cy, HAlign::left, VAlign::middle);
  }
  canvas.line(plot.x - 0.5, plot.y, plot.x - 0.5, plot.bottom(), kAxis, 1);
  canvas.line(plot.x, plot.bottom() + 0.5, plot.right(), plot.bottom() + 0.5, kAxis, 1);

  canvas.set_font(13);
  canvas.set_color(kText);
  if (!chart.x_label.empty()) {
    canvas.text(canvas.fit(chart.x_label, plot.w), plot.x + plot.w / 2, plot.bottom() + 6 + tick_h + 6,
                HAlign::center, VAlign::top);
  }
  if (!chart.y_label.empty()) {
    canvas.text(canvas.fit(chart.y_label, plot.h), 12, plot.y + plot.h / 2, HAlign::center, VAlign::top, -90);
  }
  if (n == 0) {
    canvas.set_font(14);
    canvas.set_color(kMuted);
    canvas.text("no data", plot.x + plot.w / 2, plot.y + plot.h / 2, HAlign::center, VAlign::middle);
  }
  return canvas.finish();
}

void render_bar_chart(const BarChart& chart, const fs::path& out, int width, int height) {
  save_chart(draw_bar_chart(chart, chart_format_for(out), width, height), out);
}

}  // namespace tabby::report
