// The HTML report builder: escaping, base64 against RFC 4648's test vectors,
// embedded images that round-trip byte for byte, no external resources, and
// (when Chromium is installed) a real browser loading the page and every image.
#include <gtest/gtest.h>

#include <regex>

#include "tabby/report/base64.h"
#include "tabby/report/chart.h"
#include "tabby/report/html.h"
#include "tabby/report/metrics_html.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "support/test_support.h"

using namespace tabby::report;

namespace {

// A 2x2 red RGB PNG, made once with Python's zlib (signature, IHDR, IDAT, IEND).
const std::string kTinyPng(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00"
    "\x00\x00\xfd\xd4\x9a\x73\x00\x00\x00\x10\x49\x44\x41\x54\x78\x9c\x63\xf8\xcf\xc0\x00\x44\x0c\x10\x0a\x00\x1f"
    "\xee\x03\xfd\x8b\x5f\x14\xd4\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    73);

const std::string kTinySvg =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\"><rect width=\"40\" height=\"20\" "
    "fill=\"#2f6db5\"/></svg>";

// Every data URI's payload in `html`, decoded.
std::vector<std::string> embedded_images(const std::string& html) {
  std::vector<std::string> out;
  static const std::regex uri("src=\"data:([a-z/+]+);base64,([A-Za-z0-9+/=]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), uri); it != std::sregex_iterator(); ++it) {
    auto decoded = base64_decode((*it)[2].str());
    out.push_back(decoded ? *decoded : std::string("<invalid base64>"));
  }
  return out;
}

}  // namespace

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");

  for (const char* s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), std::optional<std::string>(s));
  }
  EXPECT_EQ(base64_decode("//4A"), std::optional<std::string>(std::string("\xff\xfe\x00", 3)));
  EXPECT_EQ(base64_decode("Zg="), std::nullopt);      // not a multiple of 4
  EXPECT_EQ(base64_decode("Z===") , std::nullopt);    // too much padding
  EXPECT_EQ(base64_decode("Zg==Zg=="), std::nullopt);  // padding in the middle
  EXPECT_EQ(base64_decode("Zm9v!A=="), std::nullopt);
  EXPECT_EQ(data_uri("image/png", "foo"), "data:image/png;base64,Zm9v");
}

TEST(Html, Escape) {
  EXPECT_EQ(html_escape("<b class=\"x\">Tom & Jerry's</b>"),
            "&lt;b class=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/b&gt;");
  EXPECT_EQ(html_escape("plain ünïcode"), "plain ünïcode");
}

TEST(Html, EverythingUserSuppliedIsEscaped) {
  HtmlReport r("Run <1> & \"friends\"", "sub<title>");
  r.add_section("Data <summary>");
  r.add_paragraph("<script>alert(1)</script>");
  r.add_note("a & b");
  r.add_key_values({{"<key>", "<value>"}});
  r.add_table({"class <name>"}, {{"<cat>"}, {"dog&co"}}, "cap<tion>");
  r.add_preformatted("a < b\n");
  r.add_image_png(kTinyPng, "alt \"quoted\" <x>", "caption <y>");
  const std::string html = r.html();
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<1>"), std::string::npos);
  EXPECT_EQ(html.find("<cat>"), std::string::npos);
  EXPECT_EQ(html.find("<key>"), std::string::npos);
  EXPECT_EQ(html.find("<summary>"), std::string::npos);
  EXPECT_NE(html.find("<title>Run &lt;1&gt; &amp; &quot;friends&quot;</title>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html.find("alt=\"alt &quot;quoted&quot; &lt;x&gt;\""), std::string::npos);
  EXPECT_NE(html.find("<pre>a &lt; b\n</pre>"), std::string::npos);
}

TEST(Html, StructureSectionsAndTableOfContents) {
  HtmlReport r("Report");
  r.add_section("Data summary");
  r.add_paragraph("one");
  r.add_section("Test metrics");
  r.add_table({"class", "precision", "support"}, {{"cat", "0.91", "1,200"}, {"dog"}});
  const std::string html = r.html();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"s1-data-summary\">"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"s2-test-metrics\">"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"#s1-data-summary\">Data summary</a>"), std::string::npos);
  EXPECT_NE(html.find("<a href=\"#s2-test-metrics\">Test metrics</a>"), std::string::npos);
  // Numbers right-aligned, text not; short rows padded.
  EXPECT_NE(html.find("<td>cat</td><td class=\"num\">0.91</td><td class=\"num\">1,200</td>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>dog</td><td></td><td></td></tr>"), std::string::npos);
  // Sections are balanced.
  size_t open = 0, close = 0;
  for (size_t at = 0; (at = html.find("<section", at)) != std::string::npos; ++at) ++open;
  for (size_t at = 0; (at = html.find("</section>", at)) != std::string::npos; ++at) ++close;
  EXPECT_EQ(open, 2u);
  EXPECT_EQ(close, 2u);
}

TEST(Html, EmbeddedImagesRoundTrip) {
  auto dir = tabby::testing::scratch_dir("html_images");
  tabby::testing::write_bytes(dir / "pic.svg", kTinySvg);
  tabby::testing::write_bytes(dir / "pic.png", kTinyPng);

  HtmlReport r("Images");
  r.add_image_png(kTinyPng, "png");
  r.add_image_file(dir / "pic.svg", "svg file");
  r.add_images({image_from_file(dir / "pic.png", "a"), HtmlImage{kTinySvg, "image/svg+xml", "b", "side by side"}});
  const std::string html = r.html();
  const std::vector<std::string> images = embedded_images(html);
  ASSERT_EQ(images.size(), 4u);
  EXPECT_EQ(images[0], kTinyPng);
  EXPECT_EQ(images[1], kTinySvg);
  EXPECT_EQ(images[2], kTinyPng);
  EXPECT_EQ(images[3], kTinySvg);
  EXPECT_NE(html.find("src=\"data:image/svg+xml;base64,"), std::string::npos);

  EXPECT_THROW(r.add_image_file(dir / "missing.png", "x"), tabby::Error);
  tabby::testing::write_bytes(dir / "notes.txt", "hello");
  EXPECT_THROW(r.add_image_file(dir / "notes.txt", "x"), tabby::Error);
}

TEST(Html, NoExternalResources) {
  HtmlReport r("Self-contained");
  r.add_section("Images");
  r.add_image_png(kTinyPng, "png");
  r.add_paragraph("see http://example.com");  // text, not a link: escaped and harmless
  const std::string html = r.html();
  static const std::regex external(R"((src|href)\s*=\s*["']?(https?:|//|file:))", std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, external));
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_NE(html.find("Content-Security-Policy"), std::string::npos);
}

TEST(Html, MetricsTables) {
  using namespace tabby::metrics;
  const ConfusionMatrix m = confusion_matrix({0, 1, 2, 2, 2}, {0, 0, 2, 2, 1}, 3);
  HtmlReport r("Metrics");
  add_classification_report(r, classification_report(m, {"c0", "c<1>", "c2"}), 2);
  add_confusion_matrix_table(r, m, {"c0", "c<1>", "c2"});
  const std::string html = r.html();
  EXPECT_NE(html.find("<th>class</th><th>precision</th><th>recall</th><th>f1-score</th><th>support</th>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr><td>c0</td><td class=\"num\">0.50</td><td class=\"num\">1.00</td>"
                      "<td class=\"num\">0.67</td><td class=\"num\">1</td></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<tr><td>accuracy</td><td></td><td></td><td class=\"num\">0.60</td><td class=\"num\">5</td></tr>"),
            std::string::npos);
  EXPECT_NE(html.find("<td>weighted avg</td><td class=\"num\">0.70</td>"), std::string::npos);
  // Confusion matrix: header of predicted names, one row per true class.
  EXPECT_NE(html.find("<th>true \\ predicted</th><th>c0</th><th>c&lt;1&gt;</th><th>c2</th>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>c2</td><td class=\"num\">0</td><td class=\"num\">1</td><td class=\"num\">2</td></tr>"),
            std::string::npos);
}

TEST(Html, WriteIsTheDocument) {
  auto dir = tabby::testing::scratch_dir("html_write");
  HtmlReport r("Written");
  r.add_paragraph("x");
  r.write(dir / "report.html");
  EXPECT_EQ(tabby::read_file(dir / "report.html"), r.html());
  EXPECT_THROW(r.write(dir / "no-such-folder" / "report.html"), tabby::Error);
}

// Loads a report in headless Chromium: all images must decode and the page
// must log no errors; a report with a corrupt image must be caught.
TEST(HtmlBrowser, ChromiumLoadsEveryImage) {
  const std::filesystem::path script = std::filesystem::path(TABBY_SOURCE_DIR) / "tests/browser/check_report.sh";
  if (!std::filesystem::exists("/usr/bin/chromium") && !std::getenv("CHROMIUM")) {
    GTEST_SKIP() << "Chromium is not installed";
  }
  ASSERT_TRUE(std::filesystem::exists(script)) << script;
  auto dir = tabby::testing::scratch_dir("html_browser");

  HtmlReport good("Browser check");
  good.add_section("Pictures");
  good.add_image_png(kTinyPng, "tiny png");
  good.add_images({HtmlImage{kTinySvg, "image/svg+xml", "tiny svg", ""}});
  if (charts_available()) {
    LineChart chart;
    chart.title = "Accuracy";
    chart.series.push_back({"training", {1, 2, 3}, {0.5, 0.7, 0.8}});
    Chart svg = draw_line_chart(chart, ChartFormat::svg, 400, 250);
    Chart png = draw_line_chart(chart, ChartFormat::png, 400, 250);
    good.add_images({HtmlImage{svg.bytes, svg.mime(), "svg chart", ""}, HtmlImage{png.bytes, png.mime(), "png chart", ""}});
  }
  good.add_table({"a", "b"}, {{"1", "2"}});
  good.write(dir / "good.html");
  auto ok = tabby::testing::run_command(tabby::testing::shell_quote(script.string()) +
                                        " --no-screenshot --min-images 2 " +
                                        tabby::testing::shell_quote((dir / "good.html").string()));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("0 broken"), std::string::npos) << ok.out;

  HtmlReport bad("Broken image");
  bad.add_image_png("this is not a PNG", "broken");
  bad.write(dir / "bad.html");
  auto failed = tabby::testing::run_command(tabby::testing::shell_quote(script.string()) + " --no-screenshot " +
                                            tabby::testing::shell_quote((dir / "bad.html").string()));
  EXPECT_EQ(failed.exit_code, 1) << failed.out << failed.err;
  EXPECT_NE(failed.out.find("IMG-BROKEN"), std::string::npos) << failed.out;
}
