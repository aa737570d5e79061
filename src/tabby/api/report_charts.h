// The pictures of run and experiment reports: training curves, the models'
// curves overlaid, and grids of predicted images. Each is drawn once, embedded
// in the page and, when the report keeps chart files, saved beside it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/api/run_evaluation.h"
#include "tabby/report/chart.h"
#include "tabby/report/html.h"
#include "tabby/run/history.h"

namespace tabby {

// Where a report's charts go: embedded always, saved as DIR/NAME.png when `dir` is set.
struct ChartSink {
  std::filesystem::path dir;  // empty: not saved
  std::vector<std::filesystem::path> saved;

  report::HtmlImage keep(const report::Chart& chart, const std::string& name, const std::string& alt,
                         const std::string& caption = {});
};

bool has_metric(const std::vector<EpochRecord>& history, Monitor metric);

// The name of class `k`, or `k` itself where the run names no such class.
std::string class_name(const std::vector<std::string>& names, int k);

// "accuracy" and "loss" curves of one run (training solid, validation dashed);
// titles prefixed by `prefix` when given. None without cairo or history.
std::vector<report::HtmlImage> curve_images(const std::vector<EpochRecord>& history, ChartSink& sink,
                                            const std::string& prefix);

// One metric ("accuracy" or "loss") of several runs: validation solid, training dashed.
report::LineChart overlaid_chart(const std::vector<std::string>& names,
                                 const std::vector<std::vector<EpochRecord>>& histories, const std::string& metric);

// The evaluation's sample of predictions, marked right or wrong; nullopt when no file can be read.
std::optional<report::HtmlImage> prediction_grid(const RunEvaluation& evaluation, ChartSink& sink);
// Its most confidently wrong images.
std::optional<report::HtmlImage> mistakes_grid(const RunEvaluation& evaluation, ChartSink& sink);

}  // namespace tabby
