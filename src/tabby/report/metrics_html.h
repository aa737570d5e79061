// Metrics as HTML tables: the classification report (scikit-learn's rows and
// columns) and the confusion matrix with class names, for run reports.
#pragma once

#include <string>
#include <vector>

#include "tabby/metrics/classification.h"
#include "tabby/report/html.h"

namespace tabby::report {

// Columns: class, precision, recall, f1-score, support; then the accuracy,
// macro avg and weighted avg rows, numbers with `digits` decimals.
void add_classification_report(HtmlReport& html, const metrics::ClassificationReport& report, int digits = 3);

// Rows are true classes, columns predicted ones; the caption says so.
void add_confusion_matrix_table(HtmlReport& html, const metrics::ConfusionMatrix& matrix,
                                const std::vector<std::string>& class_names = {});

}  // namespace tabby::report
