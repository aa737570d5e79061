#include "tabby/api/report_charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tabby/image/decode.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {

namespace {

constexpr int kGridCell = 150;

report::Series series_of(const std::vector<EpochRecord>& h, Monitor metric, const std::string& label, bool dashed,
                         std::optional<int> color) {
  report::Series s;
  s.label = label;
  s.dashed = dashed;
  s.color = color;
  for (const auto& r : h) {
    s.x.push_back(r.epoch);
    s.y.push_back(r.metric(metric));
  }
  return s;
}

int fine_tune_start(const std::vector<EpochRecord>& h) {
  for (const auto& r : h) {
    if (r.phase != TrainPhase::train) return r.epoch;
  }
  return 0;
}

// (training, validation) monitors of "accuracy" or "loss".
std::pair<Monitor, Monitor> monitors_of(const std::string& metric) {
  return metric == "accuracy" ? std::make_pair(Monitor::accuracy, Monitor::val_accuracy)
                              : std::make_pair(Monitor::loss, Monitor::val_loss);
}

report::LineChart run_curves(const std::vector<EpochRecord>& h, const std::string& metric, const std::string& title) {
  const auto [train, val] = monitors_of(metric);
  report::LineChart chart;
  chart.title = title;
  chart.y_label = metric;
  chart.series.push_back(series_of(h, train, "training " + metric, false, 0));
  if (has_metric(h, val)) chart.series.push_back(series_of(h, val, "validation " + metric, true, 1));
  if (const int ft = fine_tune_start(h)) chart.subtitle = fmt::format("fine-tuning from epoch {}", ft);
  if (metric == "accuracy") chart.y_max = 1.0;
  if (metric == "loss") report::fit_axis_to_later_points(chart);
  return chart;
}

// Decodes a file small for a grid cell; nullopt when it cannot be read now.
std::optional<Image> thumbnail(const fs::path& file) {
  try {
    DecodeOptions d;
    d.target_width = d.target_height = kGridCell;
    return decode_image_file(file, d);
  } catch (const Error&) {
    return std::nullopt;
  }
}

report::GridStyle grid_style(const std::string& title) {
  report::GridStyle style;
  style.cell_size = kGridCell;
  style.caption_lines = 2;
  style.title = title;
  return style;
}

}  // namespace

std::string class_name(const std::vector<std::string>& names, int k) {
  return k >= 0 && static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : std::to_string(k);
}

report::HtmlImage ChartSink::keep(const report::Chart& chart, const std::string& name, const std::string& alt,
                                  const std::string& caption) {
  if (!dir.empty()) {
    ensure_directory(dir);
    const fs::path file = dir / (name + ".png");
    report::save_chart(chart, file);
    saved.push_back(file);
  }
  return report::HtmlImage{chart.bytes, chart.mime(), alt, caption};
}

bool has_metric(const std::vector<EpochRecord>& h, Monitor metric) {
  return std::any_of(h.begin(), h.end(), [&](const EpochRecord& r) { return std::isfinite(r.metric(metric)); });
}

std::vector<report::HtmlImage> curve_images(const std::vector<EpochRecord>& h, ChartSink& sink,
                                            const std::string& prefix) {
  std::vector<report::HtmlImage> images;
  if (h.empty() || !report::charts_available()) return images;
  for (const char* metric : {"accuracy", "loss"}) {
    const std::string title = std::string(metric == std::string("accuracy") ? "Accuracy" : "Loss") + " per epoch";
    auto chart = report::draw_line_chart(run_curves(h, metric, prefix.empty() ? title : prefix + ": " + title),
                                         report::ChartFormat::png, 640, 400);
    images.push_back(sink.keep(chart, metric, title));
  }
  return images;
}

report::LineChart overlaid_chart(const std::vector<std::string>& names,
                                 const std::vector<std::vector<EpochRecord>>& histories, const std::string& metric) {
  const auto [train, val] = monitors_of(metric);
  report::LineChart chart;
  chart.title = std::string(metric == "accuracy" ? "Accuracy" : "Loss") + " per epoch, all models";
  chart.subtitle = "solid: validation, dashed: training";
  chart.y_label = metric;
  if (metric == "accuracy") chart.y_max = 1.0;
  for (size_t k = 0; k < names.size() && k < histories.size(); ++k) {
    const auto& h = histories[k];
    if (h.empty()) continue;
    const int color = static_cast<int>(k);
    if (has_metric(h, val)) chart.series.push_back(series_of(h, val, names[k], false, color));
    chart.series.push_back(series_of(h, train, names[k] + " (train)", true, color));
  }
  if (metric == "loss") report::fit_axis_to_later_points(chart);
  return chart;
}

std::optional<report::HtmlImage> prediction_grid(const RunEvaluation& ev, ChartSink& sink) {
  std::vector<report::GridCell> cells;
  for (const auto& s : ev.samples) {
    auto image = thumbnail(s.file);
    if (!image) continue;
    const std::string predicted = class_name(ev.outcome.class_names, s.predicted);
    cells.push_back({std::move(*image),
                     fmt::format("{} ({:.2f})\ntrue: {}", predicted, s.probability,
                                 class_name(ev.outcome.class_names, s.label)),
                     s.label == s.predicted});
  }
  if (cells.empty()) return std::nullopt;
  const auto style =
      grid_style(fmt::format("Predictions on {} {} images (green: right, red: wrong)", cells.size(), ev.split));
  const int columns = cells.size() > 9 ? 4 : 3;
  auto chart = report::draw_image_grid(cells, columns, report::ChartFormat::png, style);
  return sink.keep(chart, "predictions", "grid of predictions",
                   "A fixed random sample: predicted class (probability), true class below.");
}

std::optional<report::HtmlImage> mistakes_grid(const RunEvaluation& ev, ChartSink& sink) {
  std::vector<report::GridCell> cells;
  for (const auto& m : ev.outcome.top_losses) {
    auto image = thumbnail(m.file);
    if (!image) continue;
    cells.push_back({std::move(*image),
                     fmt::format("{} ({:.2f})\ntrue: {}", m.predicted_label, m.probability, m.true_label), false});
  }
  if (cells.empty()) return std::nullopt;
  auto chart = report::draw_image_grid(cells, 4, report::ChartFormat::png, grid_style("Most confidently wrong (top losses)"));
  return sink.keep(chart, "mistakes", "most confidently wrong images");
}

}  // namespace tabby
