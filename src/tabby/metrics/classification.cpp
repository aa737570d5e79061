// Confusion matrix and scikit-learn-compatible classification report.
#include "tabby/metrics/classification.h"

#include <fmt/format.h>

#include <algorithm>

#include "tabby/util/error.h"

namespace tabby::metrics {

namespace {

// Python's len() on a str counts code points; padding must do the same so
// non-ASCII class names line up as they do in scikit-learn's output.
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string pad_left(const std::string& s, size_t width) {
  size_t w = display_width(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

std::string pad_right(const std::string& s, size_t width) {
  size_t w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

double safe_ratio(double numerator, double denominator) { return denominator > 0 ? numerator / denominator : 0.0; }

std::vector<std::string> names_or_indices(const std::vector<std::string>& names, int num_classes) {
  if (names.empty()) {
    std::vector<std::string> out;
    for (int i = 0; i < num_classes; ++i) out.push_back(std::to_string(i));
    return out;
  }
  if (static_cast<int>(names.size()) != num_classes) {
    throw Error(fmt::format("{} class names given for {} classes", names.size(), num_classes),
                "pass one name per class, in class-index order");
  }
  return names;
}

}  // namespace

int64_t ConfusionMatrix::total() const {
  int64_t sum = 0;
  for (int64_t c : counts) sum += c;
  return sum;
}

int64_t ConfusionMatrix::true_count(int true_class) const {
  int64_t sum = 0;
  for (int p = 0; p < num_classes; ++p) sum += at(true_class, p);
  return sum;
}

int64_t ConfusionMatrix::predicted_count(int predicted_class) const {
  int64_t sum = 0;
  for (int t = 0; t < num_classes; ++t) sum += at(t, predicted_class);
  return sum;
}

int64_t ConfusionMatrix::correct() const {
  int64_t sum = 0;
  for (int c = 0; c < num_classes; ++c) sum += at(c, c);
  return sum;
}

ConfusionMatrix confusion_matrix(const std::vector<int>& y_true, const std::vector<int>& y_pred,
                                 int num_classes) {
  if (num_classes < 1) throw Error(fmt::format("confusion matrix needs at least 1 class, got {}", num_classes));
  if (y_true.size() != y_pred.size()) {
    throw Error(fmt::format("confusion matrix: {} true labels but {} predictions", y_true.size(), y_pred.size()),
                "pass one prediction per labelled sample");
  }
  ConfusionMatrix m;
  m.num_classes = num_classes;
  m.counts.assign(static_cast<size_t>(num_classes) * num_classes, 0);
  for (size_t i = 0; i < y_true.size(); ++i) {
    int t = y_true[i], p = y_pred[i];
    if (t < 0 || t >= num_classes || p < 0 || p >= num_classes) {
      throw Error(fmt::format("confusion matrix: sample {} has label {} / prediction {}, outside 0..{}", i, t, p,
                              num_classes - 1),
                  "labels must be class indices of the same class list");
    }
    ++m.counts[static_cast<size_t>(t) * num_classes + p];
  }
  return m;
}

ClassificationReport classification_report(const ConfusionMatrix& matrix,
                                           const std::vector<std::string>& class_names) {
  const int n = matrix.num_classes;
  std::vector<std::string> names = names_or_indices(class_names, n);
  ClassificationReport r;
  r.total = matrix.total();
  r.accuracy = safe_ratio(static_cast<double>(matrix.correct()), static_cast<double>(r.total));
  r.macro_avg.name = "macro avg";
  r.weighted_avg.name = "weighted avg";
  for (int c = 0; c < n; ++c) {
    ClassScores s;
    s.name = names[c];
    const double tp = static_cast<double>(matrix.at(c, c));
    const double predicted = static_cast<double>(matrix.predicted_count(c));
    s.support = matrix.true_count(c);
    s.precision = safe_ratio(tp, predicted);
    s.recall = safe_ratio(tp, static_cast<double>(s.support));
    // 2tp / (2tp + fp + fn): the harmonic mean of precision and recall, and 0
    // (not NaN) when both are 0.
    s.f1 = safe_ratio(2 * tp, predicted + static_cast<double>(s.support));
    r.classes.push_back(s);

    // Sums first, one division at the end: the same order numpy's average
    // uses, so rounding in the printed report matches scikit-learn's.
    r.macro_avg.precision += s.precision;
    r.macro_avg.recall += s.recall;
    r.macro_avg.f1 += s.f1;
    const double weight = static_cast<double>(s.support);
    r.weighted_avg.precision += s.precision * weight;
    r.weighted_avg.recall += s.recall * weight;
    r.weighted_avg.f1 += s.f1 * weight;
  }
  for (double* v : {&r.macro_avg.precision, &r.macro_avg.recall, &r.macro_avg.f1}) *v /= n;
  for (double* v : {&r.weighted_avg.precision, &r.weighted_avg.recall, &r.weighted_avg.f1}) {
    *v = safe_ratio(*v, static_cast<double>(r.total));
  }
  r.macro_avg.support = r.total;
  r.weighted_avg.support = r.total;
  return r;
}

std::string format_classification_report(const ClassificationReport& report, int digits) {
  digits = std::clamp(digits, 0, 12);
  size_t width = std::max<size_t>(display_width("weighted avg"), static_cast<size_t>(digits));
  for (const auto& c : report.classes) width = std::max(width, display_width(c.name));

  auto number = [&](double v) { return fmt::format(" {:>9.{}f}", v, digits); };
  auto row = [&](const ClassScores& s) {
    return pad_left(s.name, width) + " " + number(s.precision) + number(s.recall) + number(s.f1) +
           fmt::format(" {:>9}\n", s.support);
  };

  std::string out = std::string(width, ' ') + " " + fmt::format(" {:>9} {:>9} {:>9} {:>9}", "precision", "recall",
                                                                  "f1-score", "support");
  out += "\n\n";
  for (const auto& c : report.classes) out += row(c);
  out += "\n";
  // scikit-learn leaves the precision and recall columns of the accuracy row blank.
  out += pad_left("accuracy", width) + " " + fmt::format(" {:>9} {:>9}", "", "") + number(report.accuracy) +
         fmt::format(" {:>9}\n", report.total);
  out += row(report.macro_avg);
  out += row(report.weighted_avg);
  return out;
}

std::string format_confusion_matrix(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names,
                                    size_t max_width) {
  const int n = matrix.num_classes;
  std::vector<std::string> names = names_or_indices(class_names, n);

  size_t count_width = 1;
  for (int64_t c : matrix.counts) count_width = std::max(count_width, std::to_string(c).size());

  auto layout = [&](bool use_index_headers, std::vector<std::string>& row_labels,
                    std::vector<std::string>& col_labels) {
    row_labels.clear();
    col_labels.clear();
    for (int i = 0; i < n; ++i) {
      row_labels.push_back(use_index_headers ? fmt::format("[{}] {}", i, names[i]) : names[i]);
      col_labels.push_back(use_index_headers ? std::to_string(i) : names[i]);
    }
  };
  std::vector<std::string> row_labels, col_labels;
  const std::string corner = "true \\ predicted";
  auto table_width = [&](size_t& label_width, size_t& col_width) {
    label_width = display_width(corner);
    for (const auto& l : row_labels) label_width = std::max(label_width, display_width(l));
    col_width = count_width;
    for (const auto& l : col_labels) col_width = std::max(col_width, display_width(l));
    return label_width + static_cast<size_t>(n) * (col_width + 2);
  };

  size_t label_width = 0, col_width = 0;
  layout(false, row_labels, col_labels);
  if (table_width(label_width, col_width) > max_width) {
    layout(true, row_labels, col_labels);
    table_width(label_width, col_width);
  }

  std::string out = pad_right(corner, label_width);
  for (const auto& l : col_labels) out += "  " + pad_left(l, col_width);
  out += "\n";
  for (int t = 0; t < n; ++t) {
    out += pad_right(row_labels[t], label_width);
    for (int p = 0; p < n; ++p) out += "  " + pad_left(std::to_string(matrix.at(t, p)), col_width);
    out += "\n";
  }
  return out;
}

namespace {

nlohmann::json scores_json(const ClassScores& s) {
  return {{"name", s.name}, {"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
}

}  // namespace

nlohmann::json to_json(const ClassificationReport& report) {
  nlohmann::json classes = nlohmann::json::array();
  for (const auto& c : report.classes) classes.push_back(scores_json(c));
  return {{"classes", classes},
          {"accuracy", report.accuracy},
          {"total", report.total},
          {"macro_avg", scores_json(report.macro_avg)},
          {"weighted_avg", scores_json(report.weighted_avg)}};
}

nlohmann::json to_json(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names) {
  const int n = matrix.num_classes;
  nlohmann::json rows = nlohmann::json::array();
  for (int t = 0; t < n; ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (int p = 0; p < n; ++p) row.push_back(matrix.at(t, p));
    rows.push_back(row);
  }
  return {{"labels", names_or_indices(class_names, n)}, {"matrix", rows}, {"rows", "true"}, {"columns", "predicted"}};
}

MajorityBaseline majority_baseline(const std::vector<int64_t>& class_counts) {
  MajorityBaseline b;
  int64_t total = 0, best = 0;
  for (size_t i = 0; i < class_counts.size(); ++i) {
    total += class_counts[i];
    if (class_counts[i] > best) {
      best = class_counts[i];
      b.class_index = static_cast<int>(i);
    }
  }
  b.accuracy = safe_ratio(static_cast<double>(best), static_cast<double>(total));
  return b;
}

}  // namespace tabby::metrics
