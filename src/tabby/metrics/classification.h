// Classification metrics from true and predicted labels: the confusion matrix
// and scikit-learn's `classification_report` (per-class precision, recall, F1,
// support; accuracy; macro and weighted averages), as numbers, as the text
// layout scikit-learn prints, and as JSON.
//
// Semantics follow scikit-learn with `labels=range(num_classes)` and
// `zero_division=0`: a class never predicted has precision 0, a class absent
// from y_true has recall 0 and support 0, and both still count in the macro
// average. No metric is ever NaN.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tabby::metrics {

// counts[t * num_classes + p] = how many samples of true class t were
// predicted as class p (rows = true, columns = predicted).
struct ConfusionMatrix {
  int num_classes = 0;
  std::vector<int64_t> counts;

  int64_t at(int true_class, int predicted_class) const {
    return counts[static_cast<size_t>(true_class) * num_classes + predicted_class];
  }
  int64_t total() const;
  int64_t true_count(int true_class) const;            // row sum = support
  int64_t predicted_count(int predicted_class) const;  // column sum
  int64_t correct() const;                             // trace
};

// Throws tabby::Error when the vectors differ in length, num_classes < 1, or a
// label lies outside [0, num_classes).
ConfusionMatrix confusion_matrix(const std::vector<int>& y_true, const std::vector<int>& y_pred,
                                 int num_classes);

struct ClassScores {
  std::string name;
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  int64_t support = 0;
};

struct ClassificationReport {
  std::vector<ClassScores> classes;  // in class-index order
  double accuracy = 0;               // correct / total, 0 when there are no samples
  int64_t total = 0;
  ClassScores macro_avg;     // unweighted mean over classes; name "macro avg"
  ClassScores weighted_avg;  // mean weighted by support; name "weighted avg"
};

// `class_names` may be empty (names become "0", "1", ...); otherwise it must
// have num_classes entries (tabby::Error if not).
ClassificationReport classification_report(const ConfusionMatrix& matrix,
                                           const std::vector<std::string>& class_names = {});

// The exact text scikit-learn's classification_report prints (same column
// widths and rounding), ending with a newline.
std::string format_classification_report(const ClassificationReport& report, int digits = 2);

// A text table with class names: rows are true classes, columns predicted.
// When full names would make it wider than `max_width` characters, columns are
// headed by class index and rows read "[i] name".
std::string format_confusion_matrix(const ConfusionMatrix& matrix,
                                    const std::vector<std::string>& class_names = {},
                                    size_t max_width = 100);

// {"classes": [{"name","precision","recall","f1","support"}...], "accuracy",
//  "total", "macro_avg": {...}, "weighted_avg": {...}}
nlohmann::json to_json(const ClassificationReport& report);
// {"labels": [names...], "matrix": [[row of true class 0]...], "rows": "true", "columns": "predicted"}
nlohmann::json to_json(const ConfusionMatrix& matrix, const std::vector<std::string>& class_names = {});

// Accuracy of always predicting the most common class.
struct MajorityBaseline {
  int class_index = -1;  // -1 when there are no samples
  double accuracy = 0;
};
// Ties go to the lowest class index.
MajorityBaseline majority_baseline(const std::vector<int64_t>& class_counts);

}  // namespace tabby::metrics
