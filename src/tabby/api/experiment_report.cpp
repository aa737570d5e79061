#include "tabby/api/experiment_report.h"

#include <fmt/format.h>

#include "tabby/api/experiment.h"
#include "tabby/api/report_charts.h"
#include "tabby/api/run_evaluation.h"
#include "tabby/api/run_report.h"
#include "tabby/metrics/classification.h"
#include "tabby/report/html.h"
#include "tabby/report/metrics_html.h"
#include "tabby/report/number_format.h"
#include "tabby/inference/saved_run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"

namespace tabby {

namespace {

using nlohmann::json;
using report::number4;
using report::thousands;
using KeyValues = std::vector<std::pair<std::string, std::string>>;

// What the report shows of one model.
struct ModelView {
  const ComparisonRow& row;
  std::vector<EpochRecord> history;
  std::optional<RunEvaluation> evaluation;
};

std::string metric_text(double v) { return v < 0 ? "-" : number4(v); }

// The model's evaluation (cached, else made now) and its own report when that is new or missing.
std::optional<RunEvaluation> evaluation_of(const ComparisonRow& row, const ReportOptions& options, bool& evaluated) {
  try {
    ReportOptions run_options = options;
    run_options.out.clear();
    bool fresh = false;
    auto ev = run_evaluation(row.run_dir, run_options, &fresh);
    std::error_code ec;
    if (fresh || !fs::is_regular_file(row.run_dir / run_report_files::kReport, ec)) {
      render_run_report(row.run_dir, ev, row.run_dir / run_report_files::kReport,
                        options.charts ? row.run_dir / run_report_files::kCharts : fs::path());
    }
    evaluated = evaluated || fresh;
    return ev;
  } catch (const Error& e) {
    log::warnf("model {}: no evaluation for the report: {}", row.name, e.what());
    return std::nullopt;
  }
}

std::vector<ModelView> model_views(const std::vector<ComparisonRow>& rows, const ReportOptions& options,
                                   bool& evaluated) {
  std::vector<ModelView> views;
  for (const auto& row : rows) {
    ModelView v{row, {}, std::nullopt};
    if (is_run_dir(row.run_dir)) v.history = read_history_if_present(row.run_dir);
    if (row.status == ComparisonStatus::finished) v.evaluation = evaluation_of(row, options, evaluated);
    views.push_back(std::move(v));
  }
  return views;
}

// Every model saw the same split: the first run that has one tells its size.
void add_split_sizes(KeyValues& kv, const std::vector<ComparisonRow>& rows) {
  for (const auto& row : rows) {
    if (!is_run_dir(row.run_dir)) continue;
    const RunRecord run = read_run_record(row.run_dir);
    const DecodedData d = run.decoded.value_or(DecodedData{});
    const std::pair<const char*, int64_t> parts[] = {
        {"train", d.train_images}, {"validation", d.validation_images}, {"test", d.test_images}};
    for (const auto& [part, n] : parts) {
      if (n > 0) kv.push_back({std::string(part) + " images", thousands(n)});
    }
    const auto& classes = run.settings.class_names;
    if (d.train_class_counts.size() == classes.size() && !classes.empty()) {
      std::string text;
      for (size_t k = 0; k < classes.size(); ++k) {
        text += (k ? ", " : "") + fmt::format("{} {}", thousands(d.train_class_counts[k]), classes[k]);
      }
      kv.push_back({"training images per class", text});
      kv.push_back({"majority-class baseline", number4(metrics::majority_baseline(d.train_class_counts).accuracy)});
    }
    return;
  }
}

void add_data_section(report::HtmlReport& html, const fs::path& dir, const json& exp,
                      const std::vector<ComparisonRow>& rows) {
  html.add_section("Data");
  const json data = exp.value("data", json::object());
  const DataArgs args = data_args_from_json(data, (dir / experiment_files::kExperiment).string() + " data");
  KeyValues kv = {{"data", describe_data_args(args)}, {"seed", std::to_string(args.seed)}};
  if (data.contains("image_size")) {
    kv.push_back({"image size", fmt::format("{}x{}", data["image_size"][0].get<int64_t>(),
                                            data["image_size"][1].get<int64_t>())});
  }
  add_split_sizes(kv, rows);
  html.add_key_values(kv);
}

void add_comparison_section(report::HtmlReport& html, const std::vector<ComparisonRow>& rows) {
  html.add_section("Comparison");
  const auto cells = comparison_cells(rows);
  if (!cells.empty()) html.add_table(cells.front(), {cells.begin() + 1, cells.end()});
  for (const auto& row : rows) {
    if (row.status == ComparisonStatus::failed) {
      html.add_note("model " + row.name + " failed: " + row.error);
    } else if (row.status != ComparisonStatus::finished) {
      html.add_note("model " + row.name + ": " + enum_name(row.status));
    }
    if (row.collapsed_at_epoch > 0) {
      html.add_note(fmt::format("model {}: from epoch {} on it predicted one class for every validation image (its "
                                "accuracy is that class's share; see its report)",
                                row.name, row.collapsed_at_epoch));
    }
  }
}

void add_curves_section(report::HtmlReport& html, const std::vector<ModelView>& views, ChartSink& sink) {
  if (!report::charts_available()) return;
  html.add_section("Curves");
  std::vector<std::string> names;
  std::vector<std::vector<EpochRecord>> histories;
  for (const auto& v : views) {
    names.push_back(v.row.name);
    histories.push_back(v.history);
  }
  for (const char* metric : {"accuracy", "loss"}) {
    auto chart = report::draw_line_chart(overlaid_chart(names, histories, metric), report::ChartFormat::png, 900, 520);
    html.add_image(sink.keep(chart, metric, std::string(metric) + " of all models"));
  }
}

KeyValues model_facts(const ComparisonRow& row) {
  KeyValues m = {{"model", row.model}, {"status", enum_name(row.status)}, {"run folder", row.run_dir.string()}};
  if (!row.description.empty()) m.insert(m.begin(), {"description", row.description});
  if (row.params > 0) {
    m.push_back({"parameters", fmt::format("{} ({} trainable)", thousands(row.params), thousands(row.trainable_params))});
  }
  m.push_back({"best validation accuracy", row.best_val_accuracy < 0 ? "-"
                                           : fmt::format("{} (epoch {})", number4(row.best_val_accuracy),
                                                         row.best_val_epoch)});
  m.push_back({"test accuracy / loss", metric_text(row.test_accuracy) + " / " + metric_text(row.test_loss)});
  m.push_back({"training time", format_duration(row.train_seconds)});
  return m;
}

void add_model_evaluation(report::HtmlReport& html, const std::string& name, const RunEvaluation& ev) {
  html.add_heading("Classification report (" + ev.split + ")");
  report::add_classification_report(html, ev.outcome.report, 4);
  if (report::charts_available() && ev.outcome.confusion.num_classes > 0) {
    auto chart = report::draw_confusion_matrix(ev.outcome.confusion.counts, ev.outcome.class_names,
                                               report::ChartFormat::png, name + ": confusion matrix (" + ev.split + ")");
    html.add_image(report::HtmlImage{chart.bytes, chart.mime(), name + " confusion matrix", ""});
  } else {
    report::add_confusion_matrix_table(html, ev.outcome.confusion, ev.outcome.class_names);
  }
}

void add_model_section(report::HtmlReport& html, const ModelView& v) {
  html.add_section("Model " + v.row.name);
  html.add_key_values(model_facts(v.row));
  if (report::charts_available() && !v.history.empty()) {
    ChartSink none;  // per-model charts live in the model's own run folder
    html.add_images(curve_images(v.history, none, v.row.name));
  }
  if (v.evaluation) add_model_evaluation(html, v.row.name, *v.evaluation);
  std::error_code ec;
  if (fs::is_regular_file(v.row.run_dir / run_report_files::kReport, ec)) {
    html.add_paragraph("Full report of this model: " + (v.row.run_dir / run_report_files::kReport).string());
  }
}

}  // namespace

ReportResult write_experiment_report(const fs::path& dir, const ReportOptions& options) {
  const json exp = read_experiment_json(dir);
  const std::vector<ComparisonRow> rows = read_comparison(dir);
  ReportResult result;
  const std::vector<ModelView> views = model_views(rows, options, result.evaluated);
  ChartSink sink{options.charts ? dir / run_report_files::kCharts : fs::path(), {}};
  report::HtmlReport html("Experiment " + exp.value("name", dir.filename().string()),
                          exp.value("description", std::string()));
  if (!report::charts_available()) html.add_note("this build of tabby has no charts (cairo was not found)");
  add_data_section(html, dir, exp, rows);
  add_comparison_section(html, rows);
  add_curves_section(html, views, sink);
  for (const auto& v : views) add_model_section(html, v);
  const fs::path out = options.out.empty() ? dir / run_report_files::kReport : options.out;
  if (!out.parent_path().empty()) ensure_directory(out.parent_path());
  html.write(out);
  result.html = out;
  result.charts = sink.saved;
  return result;
}

}  // namespace tabby
