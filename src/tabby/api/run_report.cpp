// The run report's sections, each from the run record, its history and the
// cached evaluation (see run_report.h).
#include "tabby/api/run_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "tabby/api/report_charts.h"
#include "tabby/metrics/classification.h"
#include "tabby/nn/network.h"
#include "tabby/nn/summary.h"
#include "tabby/report/html.h"
#include "tabby/report/metrics_html.h"
#include "tabby/report/number_format.h"
#include "tabby/train/collapse.h"
#include "tabby/inference/saved_run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"

namespace tabby {

namespace {

using report::number4;
using report::percent;
using report::thousands;
using KeyValues = std::vector<std::pair<std::string, std::string>>;

KeyValues data_key_values(const RunRecord& run) {
  const RunSettings& s = run.settings;
  KeyValues kv = {{"data", describe_data_args(s.data)},
                  {"classes", fmt::format("{}", s.class_names.size())},
                  {"image size", fmt::format("{}x{} (height x width){}", s.height, s.width,
                                             s.crop_to_aspect ? ", cropped to aspect" : "")},
                  {"split seed", fmt::format("{}", s.data.seed)}};
  const DecodedData d = run.decoded.value_or(DecodedData{});
  const std::pair<const char*, int64_t> parts[] = {
      {"train", d.train_images}, {"validation", d.validation_images}, {"test", d.test_images}};
  for (const auto& [part, n] : parts) {
    if (n == 0 && std::string(part) != "train") continue;
    std::string value = thousands(n) + " images";
    const auto bad = d.skipped_files.find(part);
    if (bad != d.skipped_files.end() && bad->second > 0) value += fmt::format(" ({} unreadable files skipped)", bad->second);
    kv.push_back({std::string(part) + " images", value});
  }
  return kv;
}

void add_class_counts(report::HtmlReport& html, const std::vector<std::string>& names,
                      const std::vector<int64_t>& counts, ChartSink& sink) {
  int64_t total = 0;
  for (int64_t n : counts) total += n;
  std::vector<std::vector<std::string>> rows;
  for (size_t k = 0; k < counts.size(); ++k) {
    rows.push_back({names[k], thousands(counts[k]), percent(static_cast<double>(counts[k]) / std::max<int64_t>(total, 1))});
  }
  html.add_table({"class", "training images", "share"}, rows, "Training images per class");
  const auto baseline = metrics::majority_baseline(counts);
  if (baseline.class_index >= 0) {
    html.add_paragraph(fmt::format("Majority-class baseline on the training data: {} (always '{}').",
                                   number4(baseline.accuracy), names[static_cast<size_t>(baseline.class_index)]));
  }
  if (report::charts_available() && counts.size() > 1) {
    report::BarChart bars;
    bars.title = "Training images per class";
    bars.labels = names;
    for (int64_t n : counts) bars.values.push_back(static_cast<double>(n));
    bars.x_label = "images";
    html.add_image(sink.keep(report::draw_bar_chart(bars, report::ChartFormat::png, 640), "class_counts",
                             "training images per class"));
  }
}

void add_data_section(report::HtmlReport& html, const RunRecord& run, ChartSink& sink) {
  html.add_section("Data");
  html.add_key_values(data_key_values(run));
  const auto& names = run.settings.class_names;
  if (run.decoded && run.decoded->train_class_counts.size() == names.size() && !names.empty()) {
    add_class_counts(html, names, run.decoded->train_class_counts, sink);
  }
}

KeyValues training_setup(const ModelSpec& model, const TrainOptions& t) {
  KeyValues kv = {{"model", model.name}, {"from", model.source}};
  kv.push_back({"optimizer", fmt::format("{} (learning rate {}), batch size {}", enum_name(t.optimizer), t.lr, t.batch_size)});
  kv.push_back({"epochs", t.has_fine_tune() ? fmt::format("{} + {} fine-tuning the last {} blocks at {}", t.epochs,
                                                          t.fine_tune_epochs, t.fine_tune_last, t.fine_tune_lr)
                                            : std::to_string(t.epochs)});
  if (t.early_stopping.enabled) {
    kv.push_back({"early stopping",
                  fmt::format("{}, patience {}", enum_name(t.early_stopping.monitor), t.early_stopping.patience)});
  }
  return kv;
}

void add_model_section(report::HtmlReport& html, const ModelSpec& model, const RunSettings& s) {
  html.add_section("Model");
  KeyValues kv = training_setup(model, s.train);
  try {
    // A fresh network (no weights loaded) is enough for shapes and counts.
    nn::Network net(model, static_cast<int64_t>(s.class_names.size()), s.height, s.width);
    const nn::ModelSummary summary = nn::summarize(*net);
    kv.push_back({"parameters", fmt::format("{} ({}); trainable {}, non-trainable {}", thousands(summary.total),
                                            nn::param_bytes_text(summary.total), thousands(summary.trainable),
                                            thousands(summary.non_trainable))});
    kv.push_back({"output", summary.output});
    html.add_key_values(kv);
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : summary.rows) {
      rows.push_back({r.name + " (" + r.type + ")", nn::keras_shape(r.shape), thousands(r.params)});
    }
    html.add_table({"layer (type)", "output shape", "params"}, rows, "Model summary (as declared, before fine-tuning)");
  } catch (const std::exception& e) {
    html.add_key_values(kv);
    html.add_note(std::string("the model summary could not be built: ") + e.what());
  }
}

KeyValues training_outcome(const RunRecord& run, size_t epochs) {
  KeyValues kv = {{"status", enum_name(run.status)}, {"epochs completed", std::to_string(epochs)}};
  if (run.results) {
    const RunResults& r = *run.results;
    kv.push_back({"training time", format_duration(r.train_seconds)});
    if (r.best_epoch > 0) {
      kv.push_back({"best epoch", fmt::format("{} ({} {})", r.best_epoch, enum_name(r.best_monitor), number4(r.best_value))});
    }
    kv.push_back({"weights kept", enum_name(r.kept_weights)});
    if (r.stopped_early) kv.push_back({"stopped early", "yes"});
  }
  if (!run.error.empty()) kv.push_back({"error", run.error});
  if (run.results) {
    for (const auto& w : run.results->warnings) kv.push_back({"warning", w});
  }
  return kv;
}

void add_history_table(report::HtmlReport& html, const std::vector<EpochRecord>& h) {
  if (h.size() > 1 && h.front().accuracy > 0 && has_metric(h, Monitor::val_accuracy)) {
    const auto& last = h.back();
    if (last.accuracy - last.val_accuracy > 0.1) {
      html.add_note(fmt::format("training accuracy {} is well above validation accuracy {}: the model overfits",
                                number4(last.accuracy), number4(last.val_accuracy)));
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : h) {
    rows.push_back({std::to_string(r.epoch), number4(r.loss), number4(r.accuracy), number4(r.val_loss),
                    number4(r.val_accuracy), fmt::format("{:g}", r.lr), fmt::format("{:.1f}", r.seconds),
                    enum_name(r.phase)});
  }
  html.add_table({"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "phase"}, rows,
                 "History (history.csv)");
}

void add_training_section(report::HtmlReport& html, const RunRecord& run, const std::vector<EpochRecord>& h,
                          ChartSink& sink) {
  html.add_section("Training");
  html.add_key_values(training_outcome(run, h.size()));
  if (h.empty()) {
    html.add_note("no epoch has finished yet: no curves");
    return;
  }
  auto images = curve_images(h, sink, "");
  if (!images.empty()) html.add_images(images);
  add_history_table(html, h);
}

void add_metrics(report::HtmlReport& html, const RunEvaluation& ev) {
  const EvaluateOutcome& o = ev.outcome;
  const std::string split_title = ev.split == "test" ? "Test" : ev.split == "validation" ? "Validation" : "Evaluation";
  html.add_section(split_title + " metrics");
  KeyValues kv = {{"data", o.data_source.empty() ? ev.split : o.data_source},
                  {"images", thousands(o.result.count)},
                  {"accuracy", number4(o.result.accuracy)},
                  {"loss", number4(o.result.loss)}};
  if (o.baseline.class_index >= 0) {
    kv.push_back({"majority-class baseline", fmt::format("{} (always '{}')", number4(o.baseline.accuracy),
                                                         class_name(o.class_names, o.baseline.class_index))});
  }
  html.add_key_values(kv);
  if (o.one_class) html.add_note(one_class_evaluation_note(*o.one_class, o.result.count, o.result.accuracy));
  if (!o.skipped.empty()) html.add_note(describe_skipped(o.skipped));
  if (ev.split == "validation") {
    html.add_note("the run has no test data: these are the validation images, which also chose the kept weights");
  }
}

void add_classification(report::HtmlReport& html, const RunEvaluation& ev, ChartSink& sink) {
  const EvaluateOutcome& o = ev.outcome;
  html.add_heading("Classification report");
  report::add_classification_report(html, o.report, 4);
  html.add_heading("Confusion matrix");
  if (report::charts_available() && o.confusion.num_classes > 0) {
    auto chart = report::draw_confusion_matrix(o.confusion.counts, o.class_names, report::ChartFormat::png,
                                               "Confusion matrix (" + ev.split + ")");
    html.add_image(sink.keep(chart, "confusion", "confusion matrix heatmap"));
  }
  report::add_confusion_matrix_table(html, o.confusion, o.class_names);
}

void add_predictions(report::HtmlReport& html, const RunEvaluation& ev, ChartSink& sink) {
  html.add_section("Predictions");
  if (auto img = prediction_grid(ev, sink)) {
    html.add_image(*img);
  } else {
    html.add_paragraph("no prediction to show (the image files could not be read)");
  }
  const auto& top_losses = ev.outcome.top_losses;
  if (top_losses.empty()) return;
  html.add_heading("Most confidently wrong");
  if (auto img = mistakes_grid(ev, sink)) html.add_image(*img);
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : top_losses) {
    rows.push_back({m.file.filename().string(), m.true_label, m.predicted_label, fmt::format("{:.3f}", m.probability),
                    fmt::format("{:.3f}", m.loss)});
  }
  html.add_table({"file", "true", "predicted", "probability", "loss"}, rows);
}

}  // namespace

ReportResult render_run_report(const fs::path& run_dir, const std::optional<RunEvaluation>& ev, const fs::path& out,
                               const fs::path& charts_dir, const std::string& missing_evaluation_note) {
  const RunRecord run = read_run_record(run_dir);
  const ModelSpec model = read_run_model(run_dir);
  const RunSettings& s = run.settings;
  ChartSink sink{charts_dir, {}};
  report::HtmlReport html("Run " + run_dir.filename().string() + ": " + model.name,
                          fmt::format("{} classes, {}x{} images; {}", s.class_names.size(), s.height, s.width,
                                      run_dir.string()));
  if (!report::charts_available()) html.add_note("this build of tabby has no charts (cairo was not found)");
  add_data_section(html, run, sink);
  add_model_section(html, model, s);
  add_training_section(html, run, read_history_if_present(run_dir), sink);
  if (ev) {
    add_metrics(html, *ev);
    add_classification(html, *ev, sink);
    if (report::charts_available()) add_predictions(html, *ev, sink);
  } else {
    html.add_section("Test metrics");
    html.add_note(missing_evaluation_note);
  }
  ReportResult result;
  if (!out.empty()) {
    if (!out.parent_path().empty()) ensure_directory(out.parent_path());
    html.write(out);
    result.html = out;
  }
  result.charts = sink.saved;
  return result;
}

ReportResult write_run_report(const fs::path& run_dir, const ReportOptions& options) {
  read_run_record(run_dir);  // the clear "not a run" error before anything else
  bool evaluated = false;
  std::optional<RunEvaluation> ev = run_evaluation(run_dir, options, &evaluated);
  std::string note = "no test or validation data to evaluate on";
  std::error_code ec;
  if (!fs::is_regular_file(run_dir / run_files::kWeights, ec)) note = "the run has not finished: no kept weights to evaluate";
  const fs::path out = options.out.empty() ? run_dir / run_report_files::kReport : options.out;
  const fs::path charts = options.charts ? run_dir / run_report_files::kCharts : fs::path();
  ReportResult result = render_run_report(run_dir, ev, out, charts, note);
  result.evaluated = evaluated;
  return result;
}

ReportResult write_evaluation_report(const fs::path& run_dir, const EvaluateOutcome& outcome, const fs::path& html,
                                     const fs::path& charts_dir) {
  const RunEvaluation ev = make_run_evaluation(outcome, "evaluation");
  return render_run_report(run_dir, ev, html, charts_dir, "");
}

std::optional<ReportResult> report_after_training(const TrainOutcome& outcome) {
  try {
    cache_training_evaluation(outcome);
    return write_run_report(outcome.run_dir);
  } catch (const std::exception& e) {
    log::warnf("the run finished but its report could not be written: {}", e.what());
    return std::nullopt;
  }
}

}  // namespace tabby
