// Chart plumbing that needs no cairo: output formats, saving, grid sizes, and
// in builds without cairo, stand-ins that explain why no chart can be drawn.
#include <fmt/format.h>

#include <algorithm>

#include "tabby/report/chart.h"
#include "tabby/report/grid_layout.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby::report {

ChartFormat chart_format_for(const fs::path& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".png") return ChartFormat::png;
  if (ext == ".svg") return ChartFormat::svg;
  throw Error("cannot write chart '" + path.string() + "': unknown format '" + ext + "'",
              "name the output file .png or .svg");
}

void save_chart(const Chart& chart, const fs::path& path) { write_file_atomic(path, chart.bytes); }

CanvasSize grid_canvas_size(size_t cell_count, int columns, const GridStyle& style) {
  using namespace detail;
  if (columns < 1) throw Error(fmt::format("an image grid needs at least 1 column, got {}", columns));
  const int cell = std::clamp(style.cell_size, kGridMinCell, kGridMaxCell);
  // A short list does not leave a row of empty columns.
  const int cols = cell_count > 0 ? static_cast<int>(std::min<size_t>(columns, cell_count)) : columns;
  const int rows = std::max<int>(1, static_cast<int>((cell_count + cols - 1) / cols));
  CanvasSize size;
  size.width = 2 * kGridMargin + cols * cell + (cols - 1) * kGridGap;
  size.height = 2 * kGridMargin + (style.title.empty() ? 0 : kGridTitle) + rows * (cell + grid_caption_height(style.caption_lines)) +
                (rows - 1) * kGridGap;
  return size;
}

#ifdef TABBY_HAVE_CAIRO

bool charts_available() { return true; }

#else

bool charts_available() { return false; }

namespace {

[[noreturn]] void no_cairo() {
  throw Error("charts are not available: this tabby was built without cairo",
              "install cairo (libcairo2-dev) and rebuild, or skip the charts");
}

}  // namespace

Chart draw_line_chart(const LineChart&, ChartFormat, int, int) { no_cairo(); }
void render_line_chart(const LineChart&, const fs::path&, int, int) { no_cairo(); }
Chart draw_confusion_matrix(const std::vector<int64_t>&, const std::vector<std::string>&, ChartFormat,
                            const std::string&, int, int) {
  no_cairo();
}
void render_confusion_matrix(const std::vector<int64_t>&, const std::vector<std::string>&, const fs::path&,
                             const std::string&, int, int) {
  no_cairo();
}
Chart draw_bar_chart(const BarChart&, ChartFormat, int, int) { no_cairo(); }
void render_bar_chart(const BarChart&, const fs::path&, int, int) { no_cairo(); }
Chart draw_image_grid(const std::vector<GridCell>&, int, ChartFormat, const GridStyle&) { no_cairo(); }
void render_image_grid(const std::vector<GridCell>&, int, const fs::path&, const GridStyle&) { no_cairo(); }
Chart draw_labelled_rows(const std::vector<LabelledRow>&, ChartFormat, const GridStyle&) { no_cairo(); }
void render_labelled_rows(const std::vector<LabelledRow>&, const fs::path&, const GridStyle&) { no_cairo(); }

#endif

}  // namespace tabby::report
