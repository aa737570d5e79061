// Charts drawn with cairo: training curves, confusion-matrix heatmaps, bar
// charts and image grids. The same drawing code targets a PNG image surface or
// an SVG surface; the output path's extension (.png or .svg) picks which.
//
// Each chart has two entry points: draw_*() returns the encoded file in memory
// (for embedding in an HTML report) and render_*() writes it to a path
// atomically. Builds without cairo (the GPU machine) still link: every
// function then throws a tabby::Error saying charts are unavailable, and
// charts_available() returns false.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/image/image.h"

namespace tabby::report {

namespace fs = std::filesystem;

// False in builds without cairo.
bool charts_available();

enum class ChartFormat { png, svg };

// .png or .svg (any case); tabby::Error for anything else.
ChartFormat chart_format_for(const fs::path& path);

struct Chart {
  ChartFormat format = ChartFormat::png;
  int width = 0;  // pixels (SVG: user units)
  int height = 0;
  std::string bytes;  // the encoded PNG or SVG file
  std::string mime() const { return format == ChartFormat::png ? "image/png" : "image/svg+xml"; }
};

// Writes chart.bytes atomically; tabby::Error on failure.
void save_chart(const Chart& chart, const fs::path& path);

// ---------------------------------------------------------------- line chart

struct Series {
  std::string label;
  std::vector<double> x;  // non-finite points (either coordinate) are skipped
  std::vector<double> y;
  bool dashed = false;       // e.g. validation curves
  std::optional<int> color;  // palette index; default: one colour per series in order
};

struct LineChart {
  std::string title;
  std::string subtitle;  // a smaller line under the title, e.g. "solid: training, dashed: validation"
  std::string x_label = "epoch";
  std::string y_label;
  std::vector<Series> series;
  std::optional<double> y_min;  // fixed axis limits; default: fit the data
  std::optional<double> y_max;
};

// A chaotic first epoch can average a loss ten times the rest (16-20 against
// 0.7 for a CNN on raw pixels) and flatten every other curve at the bottom.
// When some series' first point is more than twice the largest later value of
// any series, the y axis is fixed to [0, 1.1 x that later maximum] and the
// subtitle says what lies above it (the plot area clips the line). Returns
// whether it changed the chart.
bool fit_axis_to_later_points(LineChart& chart);

// Nice 1-2-5 ticks; integer ticks when every x is a whole number (epochs);
// grid lines; a legend placed in the corner that covers the fewest data points,
// or outside the plot on the right when every corner would hide data. A series
// with one point is drawn as a marker; a chart with no finite data says so.
Chart draw_line_chart(const LineChart& chart, ChartFormat format, int width = 800, int height = 500);
void render_line_chart(const LineChart& chart, const fs::path& out, int width = 800, int height = 500);

// ------------------------------------------------------ confusion-matrix heatmap

// counts is row-major (num_classes x num_classes), rows = true class,
// columns = predicted class (as tabby::metrics::ConfusionMatrix::counts).
// Each cell shows its count; colours scale with the count (a colour bar shows
// the scale). Long class names are rotated or shortened with an ellipsis.
// width/height 0 choose a size from the number of classes.
Chart draw_confusion_matrix(const std::vector<int64_t>& counts, const std::vector<std::string>& class_names,
                            ChartFormat format, const std::string& title = "Confusion matrix", int width = 0,
                            int height = 0);
void render_confusion_matrix(const std::vector<int64_t>& counts, const std::vector<std::string>& class_names,
                             const fs::path& out, const std::string& title = "Confusion matrix", int width = 0,
                             int height = 0);

// ------------------------------------------------------------------ bar chart

struct BarChart {
  std::string title;
  std::vector<std::string> labels;  // one per bar, top to bottom
  std::vector<double> values;       // >= 0; non-finite values draw as 0
  std::string x_label;              // the value axis (e.g. "images")
  std::string y_label;              // the category axis (e.g. "class")
};

// Horizontal bars (long labels stay readable) with each value printed at the
// end of its bar. height 0 chooses a height from the number of bars.
Chart draw_bar_chart(const BarChart& chart, ChartFormat format, int width = 800, int height = 0);
void render_bar_chart(const BarChart& chart, const fs::path& out, int width = 800, int height = 0);

// ---------------------------------------------------------------- image grids

struct GridCell {
  Image image;
  std::string caption;          // e.g. "cat (0.97)"; '\n' starts a second line ("dog (0.81)\ntrue: cat")
  std::optional<bool> correct;  // true: green frame; false: red frame; none: neutral
};

struct GridStyle {
  int cell_size = 160;    // images are scaled to fit a square of this many pixels
  std::string title;
  int caption_lines = 1;  // room under each image: 1 or 2 lines (extra lines are dropped)
};

// Lays cells out in rows of `columns` (>= 1). The canvas size follows from the
// cell count: see grid_canvas_size().
Chart draw_image_grid(const std::vector<GridCell>& cells, int columns, ChartFormat format,
                      const GridStyle& style = {});
void render_image_grid(const std::vector<GridCell>& cells, int columns, const fs::path& out,
                       const GridStyle& style = {});

struct CanvasSize {
  int width = 0;
  int height = 0;
};
CanvasSize grid_canvas_size(size_t cell_count, int columns, const GridStyle& style);

// One row per label (class samples: "cat" then its images; augmentation
// previews: "original", "augmented"...). Captions are optional, per image.
struct LabelledRow {
  std::string label;
  std::vector<Image> images;
  std::vector<std::string> captions;  // empty or one per image
};

Chart draw_labelled_rows(const std::vector<LabelledRow>& rows, ChartFormat format, const GridStyle& style = {});
void render_labelled_rows(const std::vector<LabelledRow>& rows, const fs::path& out, const GridStyle& style = {});

}  // namespace tabby::report
