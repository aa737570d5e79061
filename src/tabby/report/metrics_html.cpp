// Classification metrics rendered as HTML tables.
#include "tabby/report/metrics_html.h"

#include <fmt/format.h>

#include <algorithm>

namespace tabby::report {

void add_classification_report(HtmlReport& html, const metrics::ClassificationReport& report, int digits) {
  digits = std::clamp(digits, 0, 12);
  auto number = [&](double v) { return fmt::format("{:.{}f}", v, digits); };
  auto row = [&](const metrics::ClassScores& s) {
    return std::vector<std::string>{s.name, number(s.precision), number(s.recall), number(s.f1),
                                    std::to_string(s.support)};
  };
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : report.classes) rows.push_back(row(c));
  rows.push_back({"accuracy", "", "", number(report.accuracy), std::to_string(report.total)});
  rows.push_back(row(report.macro_avg));
  rows.push_back(row(report.weighted_avg));
  html.add_table({"class", "precision", "recall", "f1-score", "support"}, rows);
}

void add_confusion_matrix_table(HtmlReport& html, const metrics::ConfusionMatrix& matrix,
                                const std::vector<std::string>& class_names) {
  const int n = matrix.num_classes;
  std::vector<std::string> names = class_names;
  if (static_cast<int>(names.size()) != n) {
    names.clear();
    for (int i = 0; i < n; ++i) names.push_back(std::to_string(i));
  }
  std::vector<std::string> headers = {"true \\ predicted"};
  headers.insert(headers.end(), names.begin(), names.end());
  std::vector<std::vector<std::string>> rows;
  for (int t = 0; t < n; ++t) {
    std::vector<std::string> row = {names[t]};
    for (int p = 0; p < n; ++p) row.push_back(std::to_string(matrix.at(t, p)));
    rows.push_back(std::move(row));
  }
  html.add_table(headers, rows, "rows: true class, columns: predicted class");
}

}  // namespace tabby::report
