// Image grids: test predictions marked right or wrong, samples per class
// (one labelled row per class), augmentation previews.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tabby/report/chart.h"
#include "tabby/report/chart_canvas.h"
#include "tabby/report/grid_layout.h"
#include "tabby/util/error.h"

namespace tabby::report {

using namespace detail;

namespace {

const Rgb kCellBackground = {0.95, 0.955, 0.965};
const Rgb kNeutralFrame = {0.80, 0.81, 0.84};

// A small round badge with a tick or a cross, drawn as paths so it never
// depends on which symbols the installed font has.
void draw_badge(Canvas& canvas, double cx, double cy, bool correct) {
  cairo_t* cr = canvas.cr();
  const double r = 9;
  cairo_new_sub_path(cr);
  cairo_arc(cr, cx, cy, r, 0, 2 * M_PI);
  canvas.set_color(correct ? kCorrect : kWrong);
  cairo_fill_preserve(cr);
  canvas.set_color({1, 1, 1});
  cairo_set_line_width(cr, 1.5);
  cairo_stroke(cr);
  cairo_set_line_width(cr, 2.2);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
  if (correct) {
    cairo_move_to(cr, cx - 4.2, cy + 0.3);
    cairo_line_to(cr, cx - 1.2, cy + 3.3);
    cairo_line_to(cr, cx + 4.4, cy - 3.4);
  } else {
    cairo_move_to(cr, cx - 3.5, cy - 3.5);
    cairo_line_to(cr, cx + 3.5, cy + 3.5);
    cairo_move_to(cr, cx + 3.5, cy - 3.5);
    cairo_line_to(cr, cx - 3.5, cy + 3.5);
  }
  cairo_stroke(cr);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
}

void draw_title(Canvas& canvas, const std::string& title) {
  if (title.empty()) return;
  canvas.set_font(17, true);
  canvas.set_color(kText);
  canvas.text(canvas.fit(title, canvas.width() - 2 * kGridMargin), canvas.width() / 2.0, kGridMargin,
              HAlign::center, VAlign::top);
}

// One image in its square box, with an optional caption underneath and, when
// `correct` is known, a coloured frame and badge.
void draw_cell(Canvas& canvas, const Image& image, const std::string& caption, std::optional<bool> correct,
               const Rect& box, int caption_lines) {
  canvas.fill_rect(box, kCellBackground);
  draw_image_fitted(canvas, image, box);
  if (correct) {
    const Rgb frame = *correct ? kCorrect : kWrong;
    canvas.stroke_rect({box.x + 1.5, box.y + 1.5, box.w - 3, box.h - 3}, frame, 3);
    draw_badge(canvas, box.right() - 13, box.y + 13, *correct);
  } else {
    canvas.stroke_rect({box.x + 0.5, box.y + 0.5, box.w - 1, box.h - 1}, kNeutralFrame, 1);
  }
  if (!caption.empty()) {
    canvas.set_font(12, correct.has_value() && !*correct);
    canvas.set_color(correct ? (*correct ? kCorrect : kWrong) : kText);
    // With room for one line only, the lines are joined instead of dropped.
    std::string text = caption;
    for (size_t at; caption_lines == 1 && (at = text.find('\n')) != std::string::npos;) text.replace(at, 1, ", ");
    size_t start = 0;
    for (int line = 0; line < caption_lines && start <= text.size(); ++line) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      canvas.text(canvas.fit(text.substr(start, end - start), box.w), box.x + box.w / 2,
                  box.bottom() + 5 + line * kGridCaptionLine, HAlign::center, VAlign::top);
      start = end + 1;
    }
  }
}

}  // namespace

Chart draw_image_grid(const std::vector<GridCell>& cells, int columns, ChartFormat format, const GridStyle& style) {
  const CanvasSize size = grid_canvas_size(cells.size(), columns, style);
  const int cell = std::clamp(style.cell_size, kGridMinCell, kGridMaxCell);
  const int cols = cells.empty() ? columns : static_cast<int>(std::min<size_t>(columns, cells.size()));
  const int caption_lines = std::clamp(style.caption_lines, 1, kGridMaxCaptionLines);
  Canvas canvas(format, size.width, size.height);
  draw_title(canvas, style.title);
  const double top = kGridMargin + (style.title.empty() ? 0 : kGridTitle);
  for (size_t i = 0; i < cells.size(); ++i) {
    const int col = static_cast<int>(i % cols), row = static_cast<int>(i / cols);
    const Rect box{static_cast<double>(kGridMargin + col * (cell + kGridGap)),
                   top + row * (cell + grid_caption_height(caption_lines) + kGridGap), static_cast<double>(cell),
                   static_cast<double>(cell)};
    draw_cell(canvas, cells[i].image, cells[i].caption, cells[i].correct, box, caption_lines);
  }
  if (cells.empty()) {
    canvas.set_font(13);
    canvas.set_color(kMuted);
    canvas.text("no images", size.width / 2.0, top + cell / 2.0, HAlign::center, VAlign::middle);
  }
  return canvas.finish();
}

void render_image_grid(const std::vector<GridCell>& cells, int columns, const fs::path& out, const GridStyle& style) {
  save_chart(draw_image_grid(cells, columns, chart_format_for(out), style), out);
}

Chart draw_labelled_rows(const std::vector<LabelledRow>& rows, ChartFormat format, const GridStyle& style) {
  const int cell = std::clamp(style.cell_size, kGridMinCell, kGridMaxCell);
  bool has_captions = false;
  size_t max_images = 1;
  for (const auto& r : rows) {
    max_images = std::max(max_images, r.images.size());
    for (const auto& c : r.captions) has_captions = has_captions || !c.empty();
  }

  Canvas probe(ChartFormat::png, 1, 1);
  probe.set_font(13, true);
  double label_w = 0;
  for (const auto& r : rows) label_w = std::max(label_w, probe.text_width(r.label));
  const double max_label_w = 220;
  label_w = std::ceil(std::min(label_w, max_label_w));
  const double label_col = label_w > 0 ? label_w + 14 : 0;

  const int row_h = cell + (has_captions ? kGridCaption : 0);
  const size_t row_count = std::max<size_t>(rows.size(), 1);
  const int width = static_cast<int>(2 * kGridMargin + label_col + max_images * cell + (max_images - 1) * kGridGap);
  const int height = static_cast<int>(2 * kGridMargin + (style.title.empty() ? 0 : kGridTitle) + row_count * row_h +
                                      (row_count - 1) * kGridGap);

  Canvas canvas(format, width, height);
  draw_title(canvas, style.title);
  const double top = kGridMargin + (style.title.empty() ? 0 : kGridTitle);
  for (size_t r = 0; r < rows.size(); ++r) {
    const double y = top + r * (row_h + kGridGap);
    canvas.set_font(13, true);
    canvas.set_color(kText);
    canvas.text(canvas.fit(rows[r].label, max_label_w), kGridMargin, y + cell / 2.0, HAlign::left, VAlign::middle);
    for (size_t i = 0; i < rows[r].images.size(); ++i) {
      const Rect box{kGridMargin + label_col + i * (cell + kGridGap), y, static_cast<double>(cell),
                     static_cast<double>(cell)};
      const std::string caption = i < rows[r].captions.size() ? rows[r].captions[i] : std::string();
      draw_cell(canvas, rows[r].images[i], caption, std::nullopt, box, 1);
    }
  }
  if (rows.empty()) {
    canvas.set_font(13);
    canvas.set_color(kMuted);
    canvas.text("no images", width / 2.0, top + cell / 2.0, HAlign::center, VAlign::middle);
  }
  return canvas.finish();
}

void render_labelled_rows(const std::vector<LabelledRow>& rows, const fs::path& out, const GridStyle& style) {
  save_chart(draw_labelled_rows(rows, chart_format_for(out), style), out);
}

}  // namespace tabby::report
