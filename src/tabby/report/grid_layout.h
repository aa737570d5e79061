// Internal: the fixed layout of image grids, shared by the renderer and by
// grid_canvas_size() (which is available without cairo).
#pragma once

namespace tabby::report::detail {

constexpr int kGridMargin = 16;   // around the whole grid
constexpr int kGridGap = 12;      // between cells
constexpr int kGridCaption = 24;  // one caption line under each image
constexpr int kGridCaptionLine = 15;  // each further caption line
constexpr int kGridTitle = 36;    // title line above the grid, when there is a title
constexpr int kGridMinCell = 16;
constexpr int kGridMaxCell = 1024;
constexpr int kGridMaxCaptionLines = 2;

inline int grid_caption_height(int caption_lines) {
  const int lines = caption_lines < 1 ? 1 : caption_lines > kGridMaxCaptionLines ? kGridMaxCaptionLines : caption_lines;
  return kGridCaption + (lines - 1) * kGridCaptionLine;
}

}  // namespace tabby::report::detail
