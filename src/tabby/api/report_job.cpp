// Run and experiment reports: everything a person wants to see after
// training, in one HTML file that needs nothing else (see report_job.h).
#include "tabby/api/report_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tabby/api/data_source.h"
#include "tabby/api/experiment.h"
#include "tabby/dataset/shuffle.h"
#include "tabby/image/decode.h"
#include "tabby/metrics/classification.h"
#include "tabby/nn/summary.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/report/chart.h"
#include "tabby/report/html.h"
#include "tabby/report/metrics_html.h"
#include "tabby/train/collapse.h"
#include "tabby/train/device.h"
#include "tabby/train/history.h"
#include "tabby/train/run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/quiet_scope.h"
#include "tabby/util/progress.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

using nlohmann::json;

constexpr uint64_t kGridSeedPurpose = 0x50524544;  // "PRED"
constexpr int kTopLosses = 8;                      // mistakes shown (two rows of four)
constexpr int kGridCell = 150;

// ------------------------------------------------------------ small helpers

std::optional<fs::file_time_type> modified(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return std::nullopt;
  return t;
}

std::string percent(double v) { return fmt::format("{:.2f}%", 100.0 * v); }
std::string number4(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }

// 1234567 -> "1,234,567"
std::string thousands(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

DataArgs data_args_from_run(const RunConfig& c) {
  DataArgs a = data_args_from_json(c.data);
  a.class_names = c.class_names;
  return a;
}

std::vector<EpochRecord> read_history_if_any(const fs::path& run_dir) {
  const fs::path file = run_dir / run_files::kHistory;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return {};
  return history_from_csv(read_file(file), file.string());
}

// Charts are drawn once: embedded in the page and, when wanted, saved as files.
struct ChartSink {
  fs::path dir;  // empty: not saved
  std::vector<fs::path> saved;

  std::optional<report::HtmlImage> keep(const report::Chart& chart, const std::string& name, const std::string& alt,
                                        const std::string& caption = {}) {
    if (!dir.empty()) {
      ensure_directory(dir);
      const fs::path file = dir / (name + ".png");
      report::save_chart(chart, file);
      saved.push_back(file);
    }
    return report::HtmlImage{chart.bytes, chart.mime(), alt, caption};
  }
};

// ------------------------------------------------------------ curves

bool has_metric(const std::vector<EpochRecord>& h, const std::string& metric) {
  return std::any_of(h.begin(), h.end(), [&](const EpochRecord& r) { return std::isfinite(r.metric(metric)); });
}

report::Series series_of(const std::vector<EpochRecord>& h, const std::string& metric, const std::string& label,
                         bool dashed, std::optional<int> color) {
  report::Series s;
  s.label = label;
  s.dashed = dashed;
  s.color = color;
  for (const auto& r : h) {
    s.x.push_back(r.epoch);
    s.y.push_back(r.metric(metric));
  }
  return s;
}

int fine_tune_start(const std::vector<EpochRecord>& h) {
  for (const auto& r : h) {
    if (r.phase != "train") return r.epoch;
  }
  return 0;
}

// "accuracy" or "loss" of one run: training solid, validation dashed.
report::LineChart run_curves(const std::vector<EpochRecord>& h, const std::string& metric, const std::string& title) {
  report::LineChart chart;
  chart.title = title;
  chart.y_label = metric;
  chart.series.push_back(series_of(h, metric, "training " + metric, false, 0));
  if (has_metric(h, "val_" + metric)) chart.series.push_back(series_of(h, "val_" + metric, "validation " + metric, true, 1));
  if (const int ft = fine_tune_start(h)) chart.subtitle = fmt::format("fine-tuning from epoch {}", ft);
  if (metric == "accuracy") chart.y_max = 1.0;
  if (metric == "loss") report::fit_axis_to_later_points(chart);
  return chart;
}

std::vector<report::HtmlImage> curve_images(const std::vector<EpochRecord>& h, ChartSink& sink,
                                            const std::string& prefix) {
  std::vector<report::HtmlImage> images;
  if (h.empty() || !report::charts_available()) return images;
  for (const char* metric : {"accuracy", "loss"}) {
    const std::string title = std::string(metric == std::string("accuracy") ? "Accuracy" : "Loss") + " per epoch";
    auto chart = report::draw_line_chart(run_curves(h, metric, prefix.empty() ? title : prefix + ": " + title),
                                         report::ChartFormat::png, 640, 400);
    if (auto img = sink.keep(chart, metric, title)) images.push_back(*img);
  }
  return images;
}

// ------------------------------------------------------------ evaluations

json samples_json(const std::vector<PredictionSample>& samples) {
  json out = json::array();
  for (const auto& s : samples) {
    out.push_back({{"file", s.file.string()}, {"label", s.label}, {"predicted", s.predicted},
                   {"probability", s.probability}});
  }
  return out;
}

std::optional<RunEvaluation> evaluate_run(const fs::path& run_dir, const ReportOptions& options) {
  configure_threads(options.threads);
  const torch::Device device = resolve_device(options.device);
  LoadedRun run = load_run(run_dir, device);
  ResolvedData data = resolve_data(data_args_from_run(run.config));
  const Dataset* dataset = data.test ? &*data.test : data.validation ? &*data.validation : nullptr;
  if (!dataset) return std::nullopt;
  const std::string split = data.test ? "test" : "validation";
  log::infof("evaluating {} on its {} data ({} images) for the report", run_dir.string(), split, dataset->size());
  ImageCacheOptions o;
  o.height = run.config.height;
  o.width = run.config.width;
  o.crop_to_aspect = run.config.crop_to_aspect;
  o.threads = options.threads;
  o.what = split + " images";
  ImageCache cache = build_image_cache(*dataset, o);
  BatchLoader loader(cache.images, cache.labels,
                     LoaderOptions{run.config.train.batch_size, false, 0, device, 2, false});
  EvalResult r = evaluate_network(*run.net, loader, 0, /*keep_outputs=*/true);
  EvaluateOutcome outcome = summarize_evaluation(r, run.config.class_names, cache.paths, kTopLosses);
  outcome.skipped = cache.skipped;
  outcome.data_source = dataset->source;
  return make_run_evaluation(outcome, split, options.grid_size);
}

void save_evaluation(const fs::path& run_dir, const RunEvaluation& ev) {
  write_file_atomic(run_dir / run_report_files::kEvaluation, to_json(ev).dump(1) + "\n");
}

// ------------------------------------------------------------ image grids

// Decodes a file small for a grid cell; nullopt when it cannot be read now.
std::optional<Image> thumbnail(const fs::path& file) {
  try {
    DecodeOptions d;
    d.target_width = d.target_height = kGridCell;
    return decode_image_file(file, d);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::string class_name(const std::vector<std::string>& names, int k) {
  return k >= 0 && static_cast<size_t>(k) < names.size() ? names[static_cast<size_t>(k)] : std::to_string(k);
}

std::optional<report::HtmlImage> prediction_grid(const RunEvaluation& ev, ChartSink& sink) {
  std::vector<report::GridCell> cells;
  for (const auto& s : ev.samples) {
    auto image = thumbnail(s.file);
    if (!image) continue;
    const bool right = s.label == s.predicted;
    const std::string predicted = class_name(ev.outcome.class_names, s.predicted);
    cells.push_back({std::move(*image),
                     fmt::format("{} ({:.2f})\ntrue: {}", predicted, s.probability,
                                 class_name(ev.outcome.class_names, s.label)),
                     right});
  }
  if (cells.empty()) return std::nullopt;
  report::GridStyle style;
  style.cell_size = kGridCell;
  style.caption_lines = 2;
  style.title = fmt::format("Predictions on {} {} images (green: right, red: wrong)", cells.size(), ev.split);
  const int columns = cells.size() > 9 ? 4 : 3;
  auto chart = report::draw_image_grid(cells, columns, report::ChartFormat::png, style);
  return sink.keep(chart, "predictions", "grid of predictions",
                   "A fixed random sample: predicted class (probability), true class below.");
}

std::optional<report::HtmlImage> mistakes_grid(const RunEvaluation& ev, ChartSink& sink) {
  std::vector<report::GridCell> cells;
  for (const auto& m : ev.outcome.top_losses) {
    auto image = thumbnail(m.file);
    if (!image) continue;
    cells.push_back({std::move(*image),
                     fmt::format("{} ({:.2f})\ntrue: {}", m.predicted_label, m.probability, m.true_label), false});
  }
  if (cells.empty()) return std::nullopt;
  report::GridStyle style;
  style.cell_size = kGridCell;
  style.caption_lines = 2;
  style.title = "Most confidently wrong (top losses)";
  auto chart = report::draw_image_grid(cells, 4, report::ChartFormat::png, style);
  return sink.keep(chart, "mistakes", "most confidently wrong images");
}

// ------------------------------------------------------------ report sections

std::string data_description(const json& data) {
  std::string out = data.value("data", std::string());
  for (const char* key : {"split", "val", "val_split", "test", "test_split"}) {
    const std::string v = data.value(key, std::string());
    if (!v.empty()) out += fmt::format(", {} {}", key, v);
  }
  for (const char* key : {"validation_split", "test_fraction"}) {
    const double v = data.value(key, 0.0);
    if (v > 0) out += fmt::format(", {} {}", key, v);
  }
  return out;
}

std::vector<int64_t> int_array(const json& j) {
  std::vector<int64_t> out;
  if (!j.is_array()) return out;
  for (const auto& v : j) out.push_back(v.is_number() ? v.get<int64_t>() : 0);
  return out;
}

void add_data_section(report::HtmlReport& html, const RunConfig& c, const json& run, ChartSink& sink) {
  html.add_section("Data");
  const json images = run.value("images", json::object());
  const json skipped = run.value("skipped_files", json::object());
  std::vector<std::pair<std::string, std::string>> kv = {
      {"data", data_description(c.data)},
      {"classes", fmt::format("{}", c.class_names.size())},
      {"image size", fmt::format("{}x{} (height x width){}", c.height, c.width,
                                 c.crop_to_aspect ? ", cropped to aspect" : "")},
      {"split seed", fmt::format("{}", c.data.value("seed", uint64_t{1337}))}};
  for (const char* part : {"train", "validation", "test"}) {
    const int64_t n = images.value(part, int64_t{0});
    if (n == 0 && std::string(part) != "train") continue;
    std::string value = thousands(n) + " images";
    const int64_t bad = skipped.value(part, int64_t{0});
    if (bad > 0) value += fmt::format(" ({} unreadable files skipped)", bad);
    kv.push_back({std::string(part) + " images", value});
  }
  html.add_key_values(kv);

  const std::vector<int64_t> counts = int_array(run.value("train_class_counts", json::array()));
  if (counts.size() == c.class_names.size() && !counts.empty()) {
    const auto baseline = metrics::majority_baseline(counts);
    std::vector<std::vector<std::string>> rows;
    int64_t total = 0;
    for (int64_t n : counts) total += n;
    for (size_t k = 0; k < counts.size(); ++k) {
      rows.push_back({c.class_names[k], thousands(counts[k]), percent(static_cast<double>(counts[k]) / std::max<int64_t>(total, 1))});
    }
    html.add_table({"class", "training images", "share"}, rows, "Training images per class");
    if (baseline.class_index >= 0) {
      html.add_paragraph(fmt::format("Majority-class baseline on the training data: {} (always '{}').",
                                     number4(baseline.accuracy), c.class_names[static_cast<size_t>(baseline.class_index)]));
    }
    if (report::charts_available() && counts.size() > 1) {
      report::BarChart bars;
      bars.title = "Training images per class";
      bars.labels = c.class_names;
      for (int64_t n : counts) bars.values.push_back(static_cast<double>(n));
      bars.x_label = "images";
      if (auto img = sink.keep(report::draw_bar_chart(bars, report::ChartFormat::png, 640), "class_counts",
                               "training images per class")) {
        html.add_image(*img);
      }
    }
  }
}

void add_model_section(report::HtmlReport& html, const RunConfig& c) {
  html.add_section("Model");
  std::vector<std::pair<std::string, std::string>> kv = {{"model", c.model.name}, {"from", c.model.source}};
  const TrainOptions& t = c.train;
  kv.push_back({"optimizer", fmt::format("{} (learning rate {}), batch size {}", t.optimizer, t.lr, t.batch_size)});
  kv.push_back({"epochs", t.has_fine_tune() ? fmt::format("{} + {} fine-tuning the last {} blocks at {}", t.epochs,
                                                          t.fine_tune_epochs, t.fine_tune_last, t.fine_tune_lr)
                                            : std::to_string(t.epochs)});
  if (t.early_stopping.enabled) {
    kv.push_back({"early stopping", fmt::format("{}, patience {}", t.early_stopping.monitor, t.early_stopping.patience)});
  }
  try {
    // A fresh network (no weights loaded) is enough for shapes and counts.
    nn::Network net(c.model, static_cast<int64_t>(c.class_names.size()), c.height, c.width);
    const nn::ModelSummary s = nn::summarize(*net);
    kv.push_back({"parameters", fmt::format("{} ({}); trainable {}, non-trainable {}", thousands(s.total),
                                            nn::param_bytes_text(s.total), thousands(s.trainable),
                                            thousands(s.non_trainable))});
    kv.push_back({"output", s.output});
    html.add_key_values(kv);
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : s.rows) {
      rows.push_back({r.name + " (" + r.type + ")", nn::keras_shape(r.shape), thousands(r.params)});
    }
    html.add_table({"layer (type)", "output shape", "params"}, rows, "Model summary (as declared, before fine-tuning)");
  } catch (const std::exception& e) {
    html.add_key_values(kv);
    html.add_note(std::string("the model summary could not be built: ") + e.what());
  }
}

void add_training_section(report::HtmlReport& html, const json& run, const std::vector<EpochRecord>& h,
                          ChartSink& sink) {
  html.add_section("Training");
  const json results = run.value("results", json::object());
  std::vector<std::pair<std::string, std::string>> kv = {{"status", run.value("status", std::string("unknown"))},
                                                         {"epochs completed", std::to_string(h.size())}};
  if (results.contains("train_seconds")) kv.push_back({"training time", format_duration(results["train_seconds"].get<double>())});
  if (results.value("best_epoch", 0) > 0) {
    kv.push_back({"best epoch", fmt::format("{} ({} {})", results["best_epoch"].get<int>(),
                                            results.value("best_monitor", std::string()),
                                            number4(results.value("best_value", 0.0)))});
  }
  if (results.contains("kept_weights")) kv.push_back({"weights kept", results["kept_weights"].get<std::string>()});
  if (results.value("stopped_early", false)) kv.push_back({"stopped early", "yes"});
  if (run.contains("error")) kv.push_back({"error", run["error"].get<std::string>()});
  for (const auto& w : results.value("warnings", json::array())) {
    if (w.is_string()) kv.push_back({"warning", w.get<std::string>()});
  }
  html.add_key_values(kv);
  if (h.empty()) {
    html.add_note("no epoch has finished yet: no curves");
    return;
  }
  auto images = curve_images(h, sink, "");
  if (!images.empty()) html.add_images(images);
  if (h.size() > 1 && h.front().accuracy > 0 && has_metric(h, "val_accuracy")) {
    const auto& last = h.back();
    if (last.accuracy - last.val_accuracy > 0.1) {
      html.add_note(fmt::format("training accuracy {} is well above validation accuracy {}: the model overfits",
                                number4(last.accuracy), number4(last.val_accuracy)));
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : h) {
    rows.push_back({std::to_string(r.epoch), number4(r.loss), number4(r.accuracy), number4(r.val_loss),
                    number4(r.val_accuracy), fmt::format("{:g}", r.lr), fmt::format("{:.1f}", r.seconds), r.phase});
  }
  html.add_table({"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds", "phase"}, rows,
                 "History (history.csv)");
}

void add_evaluation_sections(report::HtmlReport& html, const RunEvaluation& ev, ChartSink& sink) {
  const EvaluateOutcome& o = ev.outcome;
  const std::string split_title = ev.split == "test" ? "Test" : ev.split == "validation" ? "Validation" : "Evaluation";
  html.add_section(split_title + " metrics");
  std::vector<std::pair<std::string, std::string>> kv = {
      {"data", o.data_source.empty() ? ev.split : o.data_source},
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
  html.add_heading("Classification report");
  report::add_classification_report(html, o.report, 4);
  html.add_heading("Confusion matrix");
  if (report::charts_available() && o.confusion.num_classes > 0) {
    auto chart = report::draw_confusion_matrix(o.confusion.counts, o.class_names, report::ChartFormat::png,
                                               "Confusion matrix (" + ev.split + ")");
    if (auto img = sink.keep(chart, "confusion", "confusion matrix heatmap")) html.add_image(*img);
  }
  report::add_confusion_matrix_table(html, o.confusion, o.class_names);

  if (!report::charts_available()) return;
  html.add_section("Predictions");
  if (auto img = prediction_grid(ev, sink)) {
    html.add_image(*img);
  } else {
    html.add_paragraph("no prediction to show (the image files could not be read)");
  }
  if (!o.top_losses.empty()) {
    html.add_heading("Most confidently wrong");
    if (auto img = mistakes_grid(ev, sink)) html.add_image(*img);
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : o.top_losses) {
      rows.push_back({m.file.filename().string(), m.true_label, m.predicted_label, fmt::format("{:.3f}", m.probability),
                      fmt::format("{:.3f}", m.loss)});
    }
    html.add_table({"file", "true", "predicted", "probability", "loss"}, rows);
  }
}

ReportResult render_run_report(const fs::path& run_dir, const std::optional<RunEvaluation>& ev, const fs::path& out,
                               const fs::path& charts_dir, const std::string& missing_evaluation_note) {
  const RunConfig c = read_run_config(run_dir);
  const json run = read_run_json(run_dir);
  const std::vector<EpochRecord> history = read_history_if_any(run_dir);
  ChartSink sink{charts_dir, {}};
  report::HtmlReport html("Run " + run_dir.filename().string() + ": " + c.model.name,
                          fmt::format("{} classes, {}x{} images; {}", c.class_names.size(), c.height, c.width,
                                      run_dir.string()));
  if (!report::charts_available()) html.add_note("this build of tabby has no charts (cairo was not found)");
  add_data_section(html, c, run, sink);
  add_model_section(html, c);
  add_training_section(html, run, history, sink);
  if (ev) {
    add_evaluation_sections(html, *ev, sink);
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

// ------------------------------------------------------------ experiment report

report::LineChart overlaid_chart(const std::vector<ComparisonRow>& rows,
                                 const std::vector<std::vector<EpochRecord>>& histories, const std::string& metric) {
  report::LineChart chart;
  chart.title = std::string(metric == "accuracy" ? "Accuracy" : "Loss") + " per epoch, all models";
  chart.subtitle = "solid: validation, dashed: training";
  chart.y_label = metric;
  if (metric == "accuracy") chart.y_max = 1.0;
  for (size_t k = 0; k < rows.size(); ++k) {
    const auto& h = histories[k];
    if (h.empty()) continue;
    const int color = static_cast<int>(k);
    if (has_metric(h, "val_" + metric)) chart.series.push_back(series_of(h, "val_" + metric, rows[k].name, false, color));
    chart.series.push_back(series_of(h, metric, rows[k].name + " (train)", true, color));
  }
  if (metric == "loss") report::fit_axis_to_later_points(chart);
  return chart;
}

std::string row_metric(double v) { return v < 0 ? "-" : number4(v); }

}  // namespace

// ------------------------------------------------------------ public API

RunEvaluation make_run_evaluation(const EvaluateOutcome& outcome, const std::string& split, size_t grid_size,
                                  uint64_t seed) {
  RunEvaluation ev;
  ev.split = split;
  ev.outcome = outcome;
  const EvalResult& r = outcome.result;
  if (r.count <= 0 || !r.probabilities.defined()) return ev;
  auto probs = r.probabilities.to(torch::kFloat).contiguous();
  auto predicted = probs.argmax(1).to(torch::kLong).contiguous();
  auto labels = r.labels.to(torch::kLong).contiguous();
  const auto order = seeded_permutation(static_cast<size_t>(r.count), derive_seed(seed, {kGridSeedPurpose}));
  for (size_t k = 0; k < order.size() && ev.samples.size() < grid_size; ++k) {
    const int64_t i = static_cast<int64_t>(order[k]);
    const int64_t row = r.indices.defined() ? r.indices[i].item<int64_t>() : i;
    if (row < 0 || static_cast<size_t>(row) >= outcome.paths.size()) continue;
    PredictionSample s;
    s.file = outcome.paths[static_cast<size_t>(row)];
    s.label = static_cast<int>(labels[i].item<int64_t>());
    s.predicted = static_cast<int>(predicted[i].item<int64_t>());
    s.probability = probs[i][s.predicted].item<double>();
    ev.samples.push_back(s);
  }
  return ev;
}

json to_json(const RunEvaluation& ev) {
  return {{"format", "tabby-evaluation"},
          {"split", ev.split},
          {"evaluation", ev.outcome.to_json()},
          {"samples", samples_json(ev.samples)}};
}

RunEvaluation run_evaluation_from_json(const json& j, const std::string& source) {
  const std::string hint = "delete it; `tabby report` evaluates the run again";
  if (!j.is_object() || j.value("format", std::string()) != "tabby-evaluation" || !j.contains("evaluation")) {
    throw Error(source + " is not a tabby evaluation", hint);
  }
  try {
    RunEvaluation ev;
    ev.split = j.at("split").get<std::string>();
    const json& e = j.at("evaluation");
    EvaluateOutcome& o = ev.outcome;
    o.class_names = e.at("classes").get<std::vector<std::string>>();
    const int n = static_cast<int>(o.class_names.size());
    o.result.accuracy = e.at("accuracy").get<double>();
    o.result.loss = e.at("loss").get<double>();
    o.result.count = e.at("num_images").get<int64_t>();
    o.data_source = e.value("data", std::string());
    if (const auto it = e.find("predicts_one_class"); it != e.end() && it->is_string()) {
      o.one_class = it->get<std::string>();
    }
    const std::string baseline_class = e.value("baseline_class", std::string());
    o.baseline.accuracy = e.value("baseline_accuracy", 0.0);
    for (int k = 0; k < n; ++k) {
      if (o.class_names[static_cast<size_t>(k)] == baseline_class) o.baseline.class_index = k;
    }
    const json& matrix = e.at("confusion_matrix").at("matrix");
    if (!matrix.is_array() || static_cast<int>(matrix.size()) != n) throw Error("confusion matrix size");
    o.confusion.num_classes = n;
    for (const auto& row : matrix) {
      if (!row.is_array() || static_cast<int>(row.size()) != n) throw Error("confusion matrix row");
      for (const auto& v : row) o.confusion.counts.push_back(v.get<int64_t>());
    }
    o.report = metrics::classification_report(o.confusion, o.class_names);
    for (const auto& m : e.value("top_losses", json::array())) {
      o.top_losses.push_back({m.at("file").get<std::string>(), m.at("label").get<std::string>(),
                              m.at("predicted").get<std::string>(), m.at("probability").get<double>(),
                              m.at("loss").get<double>()});
    }
    for (const auto& s : e.value("skipped", json::array())) {
      o.skipped.push_back({s.at("file").get<std::string>(), s.at("reason").get<std::string>()});
    }
    for (const auto& s : j.value("samples", json::array())) {
      PredictionSample p;
      p.file = s.at("file").get<std::string>();
      p.label = s.at("label").get<int>();
      p.predicted = s.at("predicted").get<int>();
      p.probability = s.at("probability").get<double>();
      if (p.label < 0 || p.label >= n || p.predicted < 0 || p.predicted >= n) throw Error("label out of range");
      ev.samples.push_back(p);
    }
    return ev;
  } catch (const Error&) {
    throw Error(source + " is not a valid tabby evaluation (inconsistent classes or matrix)", hint);
  } catch (const json::exception& ex) {
    throw Error(source + " is not a valid tabby evaluation: " + ex.what(), hint);
  }
}

std::optional<RunEvaluation> run_evaluation(const fs::path& run_dir, const ReportOptions& options, bool* evaluated) {
  if (evaluated) *evaluated = false;
  const fs::path cached = run_dir / run_report_files::kEvaluation;
  const auto weights_time = modified(run_dir / run_files::kWeights);
  const auto cached_time = modified(cached);
  if (cached_time && !options.reevaluate && (!weights_time || *cached_time >= *weights_time)) {
    return run_evaluation_from_json(json::parse(read_file(cached), nullptr, false), cached.string());
  }
  if (!options.evaluate || !weights_time) return std::nullopt;
  auto ev = evaluate_run(run_dir, options);
  if (ev) {
    save_evaluation(run_dir, *ev);
    if (evaluated) *evaluated = true;
  }
  return ev;
}

ReportResult write_run_report(const fs::path& run_dir, const ReportOptions& options) {
  if (!is_run_dir(run_dir)) read_run_config(run_dir);  // throws the clear "not a run" error
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
    const fs::path& dir = outcome.run_dir;
    const EvalResult* r = outcome.test ? &*outcome.test : outcome.validation ? &*outcome.validation : nullptr;
    if (r && r->probabilities.defined() && r->count > 0) {
      const std::string split = outcome.test ? "test" : "validation";
      const RunConfig c = read_run_config(dir);
      const json run = read_run_json(dir);
      const int64_t skipped = run.value("skipped_files", json::object()).value(split, int64_t{-1});
      // The decoded rows are the dataset's files in order, minus skipped ones:
      // with none skipped they can be named without decoding anything again.
      if (skipped == 0) {
        ResolvedData data = [&] {
          log::QuietScope already_announced;
          return resolve_data(data_args_from_run(c));
        }();
        const Dataset* d = outcome.test ? (data.test ? &*data.test : nullptr)
                                        : (data.validation ? &*data.validation : nullptr);
        bool matches = d && static_cast<int64_t>(d->size()) == r->count;
        if (matches && r->indices.defined()) {
          auto idx = r->indices.to(torch::kLong).contiguous();
          auto labels = r->labels.to(torch::kLong).contiguous();
          for (int64_t i = 0; i < r->count && matches; ++i) {
            const int64_t row = idx[i].item<int64_t>();
            matches = row >= 0 && row < r->count && d->samples[static_cast<size_t>(row)].label == labels[i].item<int64_t>();
          }
        }
        if (matches) {
          std::vector<fs::path> paths;
          for (const auto& s : d->samples) paths.push_back(s.path);
          EvaluateOutcome o = summarize_evaluation(*r, c.class_names, paths, kTopLosses);
          o.data_source = d->source;
          save_evaluation(dir, make_run_evaluation(o, split));
        }
      }
    }
    return write_run_report(dir);
  } catch (const std::exception& e) {
    log::warnf("the run finished but its report could not be written: {}", e.what());
    return std::nullopt;
  }
}

ReportResult write_experiment_report(const fs::path& dir, const ReportOptions& options) {
  const json exp = read_experiment_json(dir);
  const std::vector<ComparisonRow> rows = read_comparison(dir);
  ChartSink sink{options.charts ? dir / run_report_files::kCharts : fs::path(), {}};
  ReportResult result;

  std::vector<std::vector<EpochRecord>> histories;
  std::vector<std::optional<RunEvaluation>> evaluations;
  for (const auto& row : rows) {
    histories.push_back(is_run_dir(row.run_dir) ? read_history_if_any(row.run_dir) : std::vector<EpochRecord>{});
    std::optional<RunEvaluation> ev;
    if (row.status == "finished") {
      try {
        bool evaluated = false;
        ReportOptions run_options = options;
        run_options.out.clear();
        ev = run_evaluation(row.run_dir, run_options, &evaluated);
        std::error_code ec;
        if (evaluated || !fs::is_regular_file(row.run_dir / run_report_files::kReport, ec)) {
          render_run_report(row.run_dir, ev, row.run_dir / run_report_files::kReport,
                            options.charts ? row.run_dir / run_report_files::kCharts : fs::path(), "");
        }
        result.evaluated = result.evaluated || evaluated;
      } catch (const Error& e) {
        log::warnf("model {}: no evaluation for the report: {}", row.name, e.what());
      }
    }
    evaluations.push_back(std::move(ev));
  }

  report::HtmlReport html("Experiment " + exp.value("name", dir.filename().string()),
                          exp.value("description", std::string()));
  if (!report::charts_available()) html.add_note("this build of tabby has no charts (cairo was not found)");

  html.add_section("Data");
  const json data = exp.value("data", json::object());
  std::vector<std::pair<std::string, std::string>> kv = {{"data", data_description(data)},
                                                         {"seed", data.contains("seed") ? data["seed"].dump() : "1337"}};
  if (data.contains("image_size")) kv.push_back({"image size", fmt::format("{}x{}", data["image_size"][0].get<int64_t>(), data["image_size"][1].get<int64_t>())});
  // Every model saw the same split: the first run that has one tells its size.
  for (const auto& row : rows) {
    if (!is_run_dir(row.run_dir)) continue;
    const json run = read_run_json(row.run_dir);
    const json images = run.value("images", json::object());
    for (const char* part : {"train", "validation", "test"}) {
      if (images.value(part, int64_t{0}) > 0) kv.push_back({std::string(part) + " images", thousands(images[part].get<int64_t>())});
    }
    const auto counts = int_array(run.value("train_class_counts", json::array()));
    const auto classes = run.value("classes", std::vector<std::string>{});
    if (counts.size() == classes.size() && !counts.empty()) {
      std::string text;
      for (size_t k = 0; k < counts.size(); ++k) text += (k ? ", " : "") + fmt::format("{} {}", thousands(counts[k]), classes[k]);
      kv.push_back({"training images per class", text});
      const auto baseline = metrics::majority_baseline(counts);
      kv.push_back({"majority-class baseline", number4(baseline.accuracy)});
    }
    break;
  }
  html.add_key_values(kv);

  html.add_section("Comparison");
  const auto cells = comparison_cells(rows);
  if (!cells.empty()) html.add_table(cells.front(), {cells.begin() + 1, cells.end()});
  for (const auto& row : rows) {
    if (row.status == "failed") html.add_note("model " + row.name + " failed: " + row.error);
    else if (row.status != "finished") html.add_note("model " + row.name + ": " + row.status);
    if (row.collapsed_at_epoch > 0) {
      html.add_note(fmt::format("model {}: from epoch {} on it predicted one class for every validation image (its "
                                "accuracy is that class's share; see its report)",
                                row.name, row.collapsed_at_epoch));
    }
  }

  if (report::charts_available()) {
    html.add_section("Curves");
    std::vector<report::HtmlImage> images;
    for (const char* metric : {"accuracy", "loss"}) {
      auto chart = report::draw_line_chart(overlaid_chart(rows, histories, metric), report::ChartFormat::png, 900, 520);
      if (auto img = sink.keep(chart, metric, std::string(metric) + " of all models")) images.push_back(*img);
    }
    for (const auto& img : images) html.add_image(img);
  }

  for (size_t k = 0; k < rows.size(); ++k) {
    const ComparisonRow& row = rows[k];
    html.add_section("Model " + row.name);
    std::vector<std::pair<std::string, std::string>> m = {{"model", row.model}, {"status", row.status},
                                                          {"run folder", row.run_dir.string()}};
    if (!row.description.empty()) m.insert(m.begin(), std::make_pair(std::string("description"), row.description));
    if (row.params > 0) m.push_back({"parameters", fmt::format("{} ({} trainable)", thousands(row.params), thousands(row.trainable_params))});
    m.push_back({"best validation accuracy", row.best_val_accuracy < 0 ? "-" : fmt::format("{} (epoch {})", number4(row.best_val_accuracy), row.best_val_epoch)});
    m.push_back({"test accuracy / loss", row_metric(row.test_accuracy) + " / " + row_metric(row.test_loss)});
    m.push_back({"training time", format_duration(row.train_seconds)});
    html.add_key_values(m);
    if (report::charts_available() && !histories[k].empty()) {
      ChartSink none;  // per-model charts live in the model's own run folder
      html.add_images(curve_images(histories[k], none, row.name));
    }
    if (evaluations[k]) {
      const RunEvaluation& ev = *evaluations[k];
      html.add_heading("Classification report (" + ev.split + ")");
      report::add_classification_report(html, ev.outcome.report, 4);
      if (report::charts_available() && ev.outcome.confusion.num_classes > 0) {
        auto chart = report::draw_confusion_matrix(ev.outcome.confusion.counts, ev.outcome.class_names,
                                                   report::ChartFormat::png, row.name + ": confusion matrix (" + ev.split + ")");
        html.add_image(report::HtmlImage{chart.bytes, chart.mime(), row.name + " confusion matrix", ""});
      } else {
        report::add_confusion_matrix_table(html, ev.outcome.confusion, ev.outcome.class_names);
      }
    }
    std::error_code ec;
    if (fs::is_regular_file(row.run_dir / run_report_files::kReport, ec)) {
      html.add_paragraph("Full report of this model: " + (row.run_dir / run_report_files::kReport).string());
    }
  }

  const fs::path out = options.out.empty() ? dir / run_report_files::kReport : options.out;
  if (!out.parent_path().empty()) ensure_directory(out.parent_path());
  html.write(out);
  result.html = out;
  result.charts = sink.saved;
  return result;
}

ReportResult write_report(const fs::path& path, const ReportOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw UsageError("'" + path.string() + "' does not exist", "give a run folder (tabby train --out) or an experiment folder (tabby run --out)");
  }
  if (is_experiment_dir(path)) return write_experiment_report(path, options);
  if (is_run_dir(path)) return write_run_report(path, options);
  throw UsageError("'" + path.string() + "' is neither a run folder nor an experiment folder",
                   "a run folder holds run.json and model.toml; an experiment folder holds experiment.json");
}

}  // namespace tabby
