// Charts: tick arithmetic, and every renderer writing a PNG of the requested
// size (read back from the IHDR chunk) and an SVG, including awkward inputs
// (no data, NaN, one epoch, ten classes with long names). Pixel checks read
// the PNG back with cairo.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tabby/report/chart.h"
#include "tabby/report/ticks.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "support/test_support.h"

#ifdef TABBY_HAVE_CAIRO
#include <cairo.h>
#endif

using namespace tabby::report;
using tabby::Image;

namespace {

struct PngSize {
  int width = -1;
  int height = -1;
};

// Width and height from the IHDR chunk, which the PNG format requires to come
// first after the 8-byte signature; -1 when the bytes are not a PNG.
PngSize png_size(const std::string& bytes) {
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  PngSize size;
  if (bytes.size() < 24 || std::memcmp(bytes.data(), kSignature, 8) != 0 || bytes.compare(12, 4, "IHDR") != 0) {
    return size;
  }
  auto be32 = [&](size_t at) {
    return (static_cast<uint8_t>(bytes[at]) << 24) | (static_cast<uint8_t>(bytes[at + 1]) << 16) |
           (static_cast<uint8_t>(bytes[at + 2]) << 8) | static_cast<uint8_t>(bytes[at + 3]);
  };
  size.width = static_cast<int>(be32(16));
  size.height = static_cast<int>(be32(20));
  return size;
}

bool looks_like_svg(const std::string& bytes) {
  return (bytes.rfind("<?xml", 0) == 0 || bytes.rfind("<svg", 0) == 0) && bytes.find("<svg") != std::string::npos &&
         bytes.find("</svg>") != std::string::npos;
}

Image solid_image(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img(w, h);
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    img.pixels[i] = r;
    img.pixels[i + 1] = g;
    img.pixels[i + 2] = b;
  }
  return img;
}

Image pattern_image(int w, int h, int seed) {
  Image img(w, h);
  img.pixels = tabby::testing::test_pattern(w, h, seed);
  return img;
}

LineChart accuracy_chart() {
  LineChart c;
  c.title = "Training and validation accuracy";
  c.y_label = "accuracy";
  c.series.push_back({"training", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0.55, 0.63, 0.7, 0.74, 0.78, 0.81, 0.83, 0.85, 0.87, 0.88}});
  c.series.push_back({"validation", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0.58, 0.66, 0.69, 0.73, 0.74, 0.76, 0.75, 0.77, 0.77, 0.78}, true});
  return c;
}

#ifdef TABBY_HAVE_CAIRO
// Reads a PNG back into a cairo image surface for pixel checks.
struct DecodedPng {
  cairo_surface_t* surface = nullptr;
  explicit DecodedPng(const std::string& bytes) {
    struct Reader {
      const std::string* data;
      size_t at = 0;
    } reader{&bytes};
    surface = cairo_image_surface_create_from_png_stream(
        [](void* closure, unsigned char* out, unsigned int length) {
          auto* r = static_cast<Reader*>(closure);
          if (r->at + length > r->data->size()) return CAIRO_STATUS_READ_ERROR;
          std::memcpy(out, r->data->data() + r->at, length);
          r->at += length;
          return CAIRO_STATUS_SUCCESS;
        },
        &reader);
  }
  ~DecodedPng() { cairo_surface_destroy(surface); }
  bool ok() const { return cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS; }
  // 0xRRGGBB at (x, y).
  uint32_t pixel(int x, int y) const {
    cairo_surface_flush(surface);
    const unsigned char* data = cairo_image_surface_get_data(surface);
    const int stride = cairo_image_surface_get_stride(surface);
    return reinterpret_cast<const uint32_t*>(data + y * stride)[x] & 0xFFFFFF;
  }
};
#endif

#define REQUIRE_CHARTS()                                                         \
  if (!charts_available()) {                                                     \
    EXPECT_THROW(draw_line_chart(accuracy_chart(), ChartFormat::png), tabby::Error); \
    GTEST_SKIP() << "built without cairo";                                       \
  }

}  // namespace

TEST(Ticks, NiceSteps) {
  Ticks t = nice_ticks(0, 1, 5);
  const std::vector<double> tenths = {0, 0.2, 0.4, 0.6, 0.8, 1};
  ASSERT_EQ(t.values.size(), tenths.size());
  for (size_t i = 0; i < tenths.size(); ++i) EXPECT_NEAR(t.values[i], tenths[i], 1e-12);
  EXPECT_EQ(t.decimals, 1);
  EXPECT_EQ(format_tick(t.values[3], t.decimals), "0.6");

  t = nice_ticks(0.53, 0.97, 5);
  ASSERT_EQ(t.values.size(), 4u);
  EXPECT_DOUBLE_EQ(t.step, 0.1);
  EXPECT_NEAR(t.values.front(), 0.6, 1e-12);
  EXPECT_NEAR(t.values.back(), 0.9, 1e-12);

  t = nice_ticks(0.7, 30.3, 6, true);  // epochs 1..30
  EXPECT_DOUBLE_EQ(t.step, 5);
  EXPECT_EQ(t.values.front(), 5);
  EXPECT_EQ(t.values.back(), 30);
  EXPECT_EQ(t.decimals, 0);

  t = nice_ticks(0.9, 3.1, 10, true);  // few epochs: steps never go below 1
  EXPECT_EQ(t.values, (std::vector<double>{1, 2, 3}));

  t = nice_ticks(-0.013, 0.013, 4);  // raw step 0.0065 rounds up to 0.01
  EXPECT_DOUBLE_EQ(t.step, 0.01);
  EXPECT_EQ(t.decimals, 2);
  ASSERT_EQ(t.values.size(), 3u);
  EXPECT_EQ(format_tick(t.values[0], t.decimals), "-0.01");
  EXPECT_EQ(t.values[1], 0.0);
  EXPECT_TRUE(nice_ticks(NAN, 1, 5).values.empty());
  EXPECT_TRUE(nice_ticks(2, 1, 5).values.empty());
}

TEST(Ticks, Labels) {
  EXPECT_EQ(format_tick(-0.0001, 2), "0.00");
  EXPECT_EQ(format_tick(1.25, 2), "1.25");
  EXPECT_EQ(format_value(1234), "1234");
  EXPECT_EQ(format_value(0.125), "0.125");
  EXPECT_EQ(format_value(12.5), "12.5");
}

// A towering first-epoch loss no longer sets the axis; ordinary curves keep theirs.
TEST(AxisFit, AFirstPointOverTwiceTheRestIsLeftAboveTheAxis) {
  LineChart chart;
  chart.subtitle = "solid: validation";
  chart.series.push_back({"train", {1, 2, 3}, {20.7, 0.68, 0.66}});
  chart.series.push_back({"val", {1, 2, 3}, {0.69, 0.67, 4.0}});
  ASSERT_TRUE(fit_axis_to_later_points(chart));
  EXPECT_DOUBLE_EQ(*chart.y_min, 0.0);
  EXPECT_NEAR(*chart.y_max, 4.4, 1e-12);  // 1.1 x the largest later value, the val spike
  EXPECT_NE(chart.subtitle.find("solid: validation; first-epoch values up to 20.7 lie above the axis"),
            std::string::npos)
      << chart.subtitle;
}

TEST(AxisFit, OrdinaryCurvesAndAwkwardOnesAreLeftAlone) {
  LineChart falling;  // a first loss of up to twice the rest is ordinary
  falling.series.push_back({"train", {1, 2, 3}, {1.2, 0.7, 0.6}});
  EXPECT_FALSE(fit_axis_to_later_points(falling));
  EXPECT_FALSE(falling.y_max.has_value());
  EXPECT_TRUE(falling.subtitle.empty());

  LineChart one_epoch;  // nothing after the first point to fit to
  one_epoch.series.push_back({"train", {1}, {20.0}});
  EXPECT_FALSE(fit_axis_to_later_points(one_epoch));

  LineChart non_finite;  // NaN later points are not "later values"; the finite ones still count
  non_finite.series.push_back({"train", {1, 2, 3}, {9.0, NAN, 1.0}});
  EXPECT_TRUE(fit_axis_to_later_points(non_finite));
  EXPECT_NEAR(*non_finite.y_max, 1.1, 1e-12);

  LineChart empty;
  EXPECT_FALSE(fit_axis_to_later_points(empty));
}

TEST(ChartFormat, FromExtension) {
  EXPECT_EQ(chart_format_for("a/b.png"), ChartFormat::png);
  EXPECT_EQ(chart_format_for("B.SVG"), ChartFormat::svg);
  EXPECT_THROW(chart_format_for("plot.jpg"), tabby::Error);
  EXPECT_THROW(chart_format_for("plot"), tabby::Error);
}

TEST(GridLayout, CanvasSize) {
  GridStyle style;
  style.cell_size = 100;
  // 16 margin, 12 gap, 24 caption: 3 columns, 2 rows.
  CanvasSize s = grid_canvas_size(5, 3, style);
  EXPECT_EQ(s.width, 2 * 16 + 3 * 100 + 2 * 12);
  EXPECT_EQ(s.height, 2 * 16 + 2 * (100 + 24) + 12);
  style.title = "t";
  EXPECT_EQ(grid_canvas_size(5, 3, style).height, s.height + 36);
  style.caption_lines = 2;  // one more 15 px line per row
  EXPECT_EQ(grid_canvas_size(5, 3, style).height, s.height + 36 + 2 * 15);
  style.caption_lines = 1;
  // Fewer cells than columns: no empty columns.
  EXPECT_EQ(grid_canvas_size(2, 8, style).width, 2 * 16 + 2 * 100 + 12);
  EXPECT_THROW(grid_canvas_size(1, 0, style), tabby::Error);
}

TEST(LineChart, PngOfRequestedSizeAndSvg) {
  REQUIRE_CHARTS();
  Chart png = draw_line_chart(accuracy_chart(), ChartFormat::png, 640, 400);
  EXPECT_EQ(png.mime(), "image/png");
  PngSize size = png_size(png.bytes);
  EXPECT_EQ(size.width, 640);
  EXPECT_EQ(size.height, 400);

  Chart svg = draw_line_chart(accuracy_chart(), ChartFormat::svg, 640, 400);
  EXPECT_TRUE(looks_like_svg(svg.bytes));
  EXPECT_EQ(svg.mime(), "image/svg+xml");
  EXPECT_NE(svg.bytes.find("640"), std::string::npos);
}

TEST(LineChart, RenderWritesFileChosenByExtension) {
  REQUIRE_CHARTS();
  auto dir = tabby::testing::scratch_dir("charts_render");
  render_line_chart(accuracy_chart(), dir / "acc.png");
  PngSize size = png_size(tabby::read_file(dir / "acc.png"));
  EXPECT_EQ(size.width, 800);
  EXPECT_EQ(size.height, 500);
  render_line_chart(accuracy_chart(), dir / "acc.svg");
  EXPECT_TRUE(looks_like_svg(tabby::read_file(dir / "acc.svg")));
  EXPECT_THROW(render_line_chart(accuracy_chart(), dir / "acc.gif"), tabby::Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "acc.gif"));
  EXPECT_THROW(render_line_chart(accuracy_chart(), dir / "missing-folder" / "acc.png"), tabby::Error);
}

TEST(LineChart, AwkwardData) {
  REQUIRE_CHARTS();
  std::vector<LineChart> cases;
  LineChart empty;
  empty.title = "no series at all";
  cases.push_back(empty);
  LineChart empty_series;
  empty_series.series.push_back({"nothing", {}, {}});
  cases.push_back(empty_series);
  LineChart all_nan;
  all_nan.series.push_back({"loss", {1, 2}, {NAN, INFINITY}});
  cases.push_back(all_nan);
  LineChart some_nan;
  some_nan.series.push_back({"loss", {1, 2, 3, 4, NAN}, {0.9, NAN, 0.5, 0.4, 0.3}});
  cases.push_back(some_nan);
  LineChart one_epoch;
  one_epoch.series.push_back({"training", {1}, {0.5}});
  one_epoch.series.push_back({"validation", {1}, {0.5}, true});
  cases.push_back(one_epoch);
  LineChart flat;
  flat.series.push_back({"flat", {1, 2, 3}, {1, 1, 1}});
  flat.y_min = 0;
  flat.y_max = 1;
  cases.push_back(flat);
  LineChart mismatched;  // x longer than y: extra x ignored
  mismatched.series.push_back({"m", {1, 2, 3, 4}, {0.1, 0.2}});
  cases.push_back(mismatched);
  LineChart many;
  for (int run = 0; run < 12; ++run) {
    Series train{"run " + std::to_string(run) + " a very long model name indeed (training)", {}, {}, false, run};
    Series val{"run " + std::to_string(run) + " (validation)", {}, {}, true, run};
    for (int e = 1; e <= 50; ++e) {
      train.x.push_back(e);
      train.y.push_back(1 - std::exp(-e / (5.0 + run)));
      val.x.push_back(e);
      val.y.push_back(0.9 - std::exp(-e / (6.0 + run)));
    }
    many.series.push_back(train);
    many.series.push_back(val);
  }
  cases.push_back(many);
  for (const auto& c : cases) {
    for (auto [w, h] : {std::pair{800, 500}, std::pair{120, 90}}) {
      PngSize size = png_size(draw_line_chart(c, ChartFormat::png, w, h).bytes);
      EXPECT_EQ(size.width, w) << c.title;
      EXPECT_EQ(size.height, h) << c.title;
    }
    EXPECT_TRUE(looks_like_svg(draw_line_chart(c, ChartFormat::svg).bytes));
  }
  EXPECT_THROW(draw_line_chart(accuracy_chart(), ChartFormat::png, 0, 100), tabby::Error);
  EXPECT_THROW(draw_line_chart(accuracy_chart(), ChartFormat::png, 100, 100000), tabby::Error);
}

#ifdef TABBY_HAVE_CAIRO
TEST(LineChart, DrawsSeriesColours) {
  // One solid series across the whole chart in the first palette colour
  // (#1f77b4): some pixels must have exactly that colour.
  LineChart c;
  c.series.push_back({"", {0, 1, 2, 3}, {0, 1, 0, 1}});
  Chart png = draw_line_chart(c, ChartFormat::png, 300, 200);
  DecodedPng decoded(png.bytes);
  ASSERT_TRUE(decoded.ok());
  int blue = 0;
  for (int y = 0; y < 200; ++y) {
    for (int x = 0; x < 300; ++x) blue += decoded.pixel(x, y) == 0x1f77b4;
  }
  EXPECT_GT(blue, 100);
}
#endif

TEST(ConfusionMatrixChart, TwoClassesAutoSize) {
  REQUIRE_CHARTS();
  Chart c = draw_confusion_matrix({40, 10, 5, 45}, {"cat", "dog"}, ChartFormat::png);
  PngSize size = png_size(c.bytes);
  EXPECT_EQ(size.width, c.width);
  EXPECT_EQ(size.height, c.height);
  EXPECT_GT(c.width, 240);
  EXPECT_GT(c.height, 240);
  EXPECT_TRUE(looks_like_svg(draw_confusion_matrix({40, 10, 5, 45}, {"cat", "dog"}, ChartFormat::svg).bytes));
}

TEST(ConfusionMatrixChart, TenLongClassNamesFixedSize) {
  REQUIRE_CHARTS();
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back("class with a long name <" + std::to_string(i) + ">");
  std::vector<int64_t> counts(100, 0);
  for (int i = 0; i < 10; ++i) {
    counts[i * 10 + i] = 90 + i * 100;
    counts[i * 10 + (i + 1) % 10] = 10;
  }
  for (auto [w, h] : {std::pair{900, 800}, std::pair{300, 200}}) {
    PngSize size = png_size(draw_confusion_matrix(counts, names, ChartFormat::png, "10 classes", w, h).bytes);
    EXPECT_EQ(size.width, w);
    EXPECT_EQ(size.height, h);
  }
  // No names: indices; all zeros: no division by zero.
  Chart zeros = draw_confusion_matrix(std::vector<int64_t>(9, 0), {}, ChartFormat::png);
  EXPECT_EQ(png_size(zeros.bytes).width, zeros.width);
  EXPECT_THROW(draw_confusion_matrix({1, 2, 3}, {"a", "b"}, ChartFormat::png), tabby::Error);
}

#ifdef TABBY_HAVE_CAIRO
TEST(ConfusionMatrixChart, LargestCountIsDarkest) {
  // 2x2 at a known size: the cell centres can be found from the layout, but
  // simpler and layout-independent: the darkest pixel of the chart is the
  // colour-map end (#08306b), used by the cell with the largest count.
  Chart c = draw_confusion_matrix({100, 0, 0, 50}, {"a", "b"}, ChartFormat::png);
  DecodedPng decoded(c.bytes);
  ASSERT_TRUE(decoded.ok());
  int darkest = 0;
  for (int y = 0; y < c.height; ++y) {
    for (int x = 0; x < c.width; ++x) darkest += decoded.pixel(x, y) == 0x08306b;
  }
  EXPECT_GT(darkest, 2000);  // a 120 px cell, minus its number

  // Names that are not valid UTF-8 (Latin-1 folder names, truncated
  // sequences) must not stop cairo drawing the rest of the chart.
  Chart odd = draw_confusion_matrix({100, 0, 0, 50}, {"caf\xe9", "\xe2\x82"}, ChartFormat::png);
  DecodedPng odd_decoded(odd.bytes);
  ASSERT_TRUE(odd_decoded.ok());
  int odd_darkest = 0;
  for (int y = 0; y < odd.height; ++y) {
    for (int x = 0; x < odd.width; ++x) odd_darkest += odd_decoded.pixel(x, y) == 0x08306b;
  }
  EXPECT_GT(odd_darkest, 2000);
}
#endif

TEST(BarChart, AutoHeightAndFixedSize) {
  REQUIRE_CHARTS();
  BarChart b{"Images per class", {"cat", "dog", "a class name that is far too long to show in full"}, {1200, 1187.5, 3},
             "images", "class"};
  Chart auto_size = draw_bar_chart(b, ChartFormat::png);
  PngSize size = png_size(auto_size.bytes);
  EXPECT_EQ(size.width, 800);
  EXPECT_EQ(size.height, auto_size.height);
  EXPECT_GT(auto_size.height, 3 * 20);
  size = png_size(draw_bar_chart(b, ChartFormat::png, 500, 300).bytes);
  EXPECT_EQ(size.width, 500);
  EXPECT_EQ(size.height, 300);
  EXPECT_TRUE(looks_like_svg(draw_bar_chart(b, ChartFormat::svg).bytes));

  BarChart empty{"nothing", {}, {}, "", ""};
  EXPECT_EQ(png_size(draw_bar_chart(empty, ChartFormat::png, 400, 200).bytes).height, 200);
  BarChart odd{"odd values", {"nan", "negative", "zero"}, {NAN, -5, 0}, "", ""};
  EXPECT_EQ(png_size(draw_bar_chart(odd, ChartFormat::png, 400, 200).bytes).width, 400);
  BarChart mismatched{"x", {"a"}, {1, 2}, "", ""};
  EXPECT_THROW(draw_bar_chart(mismatched, ChartFormat::png), tabby::Error);
}

TEST(ImageGrid, SizeFollowsLayout) {
  REQUIRE_CHARTS();
  std::vector<GridCell> cells;
  for (int i = 0; i < 7; ++i) {
    cells.push_back({pattern_image(40 + 10 * i, 30 + 5 * i, i), "cat (0.9" + std::to_string(i) + ")",
                     i % 3 == 0 ? std::optional<bool>() : std::optional<bool>(i % 2 == 0)});
  }
  GridStyle style;
  style.cell_size = 96;
  style.title = "Predictions";
  Chart c = draw_image_grid(cells, 4, ChartFormat::png, style);
  const CanvasSize expected = grid_canvas_size(cells.size(), 4, style);
  PngSize size = png_size(c.bytes);
  EXPECT_EQ(size.width, expected.width);
  EXPECT_EQ(size.height, expected.height);
  EXPECT_TRUE(looks_like_svg(draw_image_grid(cells, 4, ChartFormat::svg, style).bytes));
  style.caption_lines = 2;
  cells[1].caption = "dog (0.81)\ntrue: cat";
  Chart two_lines = draw_image_grid(cells, 4, ChartFormat::png, style);
  EXPECT_EQ(png_size(two_lines.bytes).height, grid_canvas_size(cells.size(), 4, style).height);
  EXPECT_EQ(two_lines.height, expected.height + 2 * 15);

  // Empty grid and empty images still draw.
  EXPECT_EQ(png_size(draw_image_grid({}, 3, ChartFormat::png).bytes).width, grid_canvas_size(0, 3, {}).width);
  EXPECT_GT(png_size(draw_image_grid({GridCell{Image(), "broken", false}}, 3, ChartFormat::png).bytes).width, 0);
  EXPECT_THROW(draw_image_grid(cells, 0, ChartFormat::png), tabby::Error);
}

#ifdef TABBY_HAVE_CAIRO
TEST(ImageGrid, MarksRightAndWrongAndShowsTheImage) {
  // Two cells, no title: cell i's box starts at x = 16 + i * (cell + 12), y = 16.
  GridStyle style;
  style.cell_size = 64;
  std::vector<GridCell> cells = {{solid_image(32, 32, 250, 200, 0), "right", true},
                                 {solid_image(32, 32, 250, 200, 0), "wrong", false}};
  Chart c = draw_image_grid(cells, 2, ChartFormat::png, style);
  DecodedPng decoded(c.bytes);
  ASSERT_TRUE(decoded.ok());
  const int x0 = 16, x1 = 16 + 64 + 12, y = 16;
  // Image centre keeps the image's colour.
  EXPECT_EQ(decoded.pixel(x0 + 32, y + 40), 0xfac800u);
  EXPECT_EQ(decoded.pixel(x1 + 32, y + 40), 0xfac800u);
  // Frames: green on the left cell, red on the right (left edge, mid-height).
  const uint32_t left_frame = decoded.pixel(x0 + 1, y + 40), right_frame = decoded.pixel(x1 + 1, y + 40);
  auto channel = [](uint32_t rgb, int shift) { return static_cast<int>((rgb >> shift) & 0xFF); };
  EXPECT_GT(channel(left_frame, 8), channel(left_frame, 16) + 60) << std::hex << left_frame;    // green
  EXPECT_GT(channel(right_frame, 16), channel(right_frame, 8) + 100) << std::hex << right_frame;  // red
}
#endif

TEST(LabelledRows, SamplesPerClassAndAugmentationPreview) {
  REQUIRE_CHARTS();
  std::vector<LabelledRow> rows;
  for (int r = 0; r < 3; ++r) {
    LabelledRow row;
    row.label = r == 2 ? "a very long class name that will be shortened" : "class " + std::to_string(r);
    for (int i = 0; i < 5; ++i) row.images.push_back(pattern_image(50, 40, r * 10 + i));
    rows.push_back(row);
  }
  GridStyle style;
  style.cell_size = 80;
  style.title = "Samples per class";
  Chart c = draw_labelled_rows(rows, ChartFormat::png, style);
  PngSize size = png_size(c.bytes);
  EXPECT_EQ(size.width, c.width);
  EXPECT_EQ(size.height, c.height);
  // 3 rows of 80 px, no captions: 16 + 36 + 3 * 80 + 2 * 12 + 16.
  EXPECT_EQ(c.height, 16 + 36 + 3 * 80 + 2 * 12 + 16);
  // Label column, then 5 cells.
  EXPECT_GT(c.width, 2 * 16 + 5 * 80 + 4 * 12);
  EXPECT_LE(c.width, 2 * 16 + 5 * 80 + 4 * 12 + 240);

  LabelledRow preview{"augmented", {pattern_image(60, 60, 1), pattern_image(60, 60, 2)}, {"original", "flip"}};
  Chart p = draw_labelled_rows({preview}, ChartFormat::png, style);
  EXPECT_EQ(p.height, 16 + 36 + 80 + 24 + 16);  // one row with captions
  EXPECT_EQ(png_size(p.bytes).height, p.height);
  EXPECT_TRUE(looks_like_svg(draw_labelled_rows({preview}, ChartFormat::svg, style).bytes));
  EXPECT_GT(png_size(draw_labelled_rows({}, ChartFormat::png).bytes).width, 0);
}
