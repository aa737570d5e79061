// `tabby run`: several models, one data split, one comparison. Training is
// tabby train's own job (run_train_job / resume_train_job); this file decides
// which models to train, resume or keep, and tabulates what they did.
#include "tabby/api/experiment.h"

#include <fmt/format.h>

#include <algorithm>
#include <c10/util/Exception.h>
#include <cmath>

#include "tabby/api/report_job.h"
#include "tabby/api/train_job.h"
#include "tabby/report/number_format.h"
#include "tabby/run/history.h"
#include "tabby/inference/saved_run.h"
#include "tabby/dataset/csv.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"

namespace tabby {

namespace {

using nlohmann::json;
using report::thousands;

enum class Action { train, resume, keep, retrain, not_selected };

struct Plan {
  ExperimentModel model;  // with the job's epoch override applied
  json fingerprint;
  fs::path run_dir;
  Action action = Action::train;
};

json read_json_file(const fs::path& file) {
  json j = json::parse(read_file(file), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(file.string() + " is not valid JSON", "delete it or restore it from a backup");
  return j;
}

std::optional<json> stored_fingerprint(const fs::path& run_dir) {
  const fs::path file = run_dir / experiment_files::kModelFingerprint;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  return read_json_file(file);
}

// The job's --epochs: every phase of every model trains that many epochs.
ExperimentModel with_epochs(ExperimentModel m, const std::optional<int>& epochs) {
  if (!epochs) return m;
  if (*epochs < 1) throw UsageError("--epochs must be at least 1");
  m.train["epochs"] = *epochs;
  if (m.train.value("fine_tune_epochs", 0) > 0) m.train["fine_tune_epochs"] = *epochs;
  return m;
}

std::vector<Plan> plan_models(const ExperimentSpec& spec, const ExperimentJob& job, const fs::path& out) {
  for (const auto& name : job.only) {
    if (!spec.find_model(name)) {
      std::string names;
      for (const auto& m : spec.models) names += (names.empty() ? "" : ", ") + m.name;
      throw UsageError("--only " + name + ": " + spec.source + " has no model of that name", "its models: " + names);
    }
  }
  std::vector<Plan> plans;
  std::vector<std::string> mismatched;
  for (const auto& m : spec.models) {
    Plan p;
    p.model = with_epochs(m, job.epochs);
    p.fingerprint = model_fingerprint(spec, p.model);
    p.run_dir = out / m.name;
    const bool selected = job.only.empty() || std::find(job.only.begin(), job.only.end(), m.name) != job.only.end();
    if (!selected) {
      p.action = Action::not_selected;
    } else if (is_run_dir(p.run_dir)) {
      const auto stored = stored_fingerprint(p.run_dir);
      const bool same = stored && *stored == p.fingerprint;
      const bool finished = read_run_record(p.run_dir).finished();
      if (same) {
        p.action = finished ? Action::keep : Action::resume;
      } else if (job.retrain) {
        p.action = Action::retrain;
      } else {
        mismatched.push_back(m.name);
      }
    }
    plans.push_back(std::move(p));
  }
  if (!mismatched.empty()) {
    std::string names;
    for (const auto& n : mismatched) names += (names.empty() ? "" : ", ") + n;
    throw UsageError(fmt::format("{} already holds runs of {} trained with other settings than {}", out.string(), names,
                                 spec.source),
                     "pass --retrain to train them again with the file's settings, or --out another folder");
  }
  return plans;
}

TrainJob train_job_for(const ExperimentSpec& spec, const Plan& p, const ExperimentJob& job) {
  const ExperimentData& d = spec.data;
  TrainJob t;
  t.model = p.model.model;
  t.data.data = d.data;
  t.data.split = d.split;
  t.data.val = d.val;
  t.data.val_split = d.val_split;
  t.data.validation_split = d.validation_split;
  t.data.test = d.test;
  t.data.test_split = d.test_split;
  t.data.test_fraction = d.test_fraction;
  t.data.stratify = d.stratify;
  t.data.seed = d.seed;
  t.image_height = p.model.image_height ? p.model.image_height : d.image_height;
  t.image_width = p.model.image_width ? p.model.image_width : d.image_width;
  t.crop_to_aspect = d.crop_to_aspect;
  t.train_overrides = p.model.train;
  t.train_overrides["seed"] = d.seed;  // one seed for the split and every model's training
  t.weights = p.model.weights;
  t.freeze_backbone = p.model.freeze_backbone;
  t.include_top = p.model.include_top;
  t.device = job.device;
  t.threads = job.threads;
  t.out = p.run_dir;
  t.overwrite = p.action == Action::retrain;
  t.stop_after_epochs = job.stop_after_epochs;
  return t;
}

void write_experiment_json(const ExperimentSpec& spec, const fs::path& out) {
  json models = json::array();
  for (const auto& m : spec.models) {
    models.push_back({{"name", m.name}, {"model", m.model}, {"description", m.description}, {"run", m.name}});
  }
  std::error_code ec;
  const fs::path source = fs::absolute(spec.source, ec);
  json j = {{"format", "tabby-experiment"},  {"name", spec.name},
            {"description", spec.description}, {"source", source.string()},
            {"data", to_json(spec.data)},      {"train", spec.train},
            {"models", models}};
  write_file_atomic(out / experiment_files::kExperiment, j.dump(2) + "\n");
}

void write_comparison_files(const fs::path& out, const std::vector<ComparisonRow>& rows) {
  write_file_atomic(out / experiment_files::kComparisonMarkdown, comparison_markdown(rows));
  write_file_atomic(out / experiment_files::kComparisonCsv, comparison_csv(rows));
  write_file_atomic(out / experiment_files::kComparisonJson, comparison_json(rows).dump(2) + "\n");
}

std::string metric_cell(double v) { return v < 0 ? "-" : fmt::format("{:.4f}", v); }

json metric_json(double v) { return v < 0 ? json(nullptr) : json(v); }

// The status column: a run that collapsed to one class says so beside "finished".
std::string status_text(const ComparisonRow& r) {
  if (r.collapsed_at_epoch <= 0) return enum_name(r.status);
  return fmt::format("{}; one class for every validation image from epoch {}", enum_name(r.status),
                     r.collapsed_at_epoch);
}

// Epochs, best validation accuracy and the summed epoch time from history.csv.
void add_history(ComparisonRow& row, const fs::path& run_dir) {
  const std::vector<EpochRecord> history = read_history_if_present(run_dir);
  row.epochs = static_cast<int>(history.size());
  for (const auto& r : history) {
    row.train_seconds += r.seconds;
    if (std::isfinite(r.val_accuracy) && r.val_accuracy > row.best_val_accuracy) {
      row.best_val_accuracy = r.val_accuracy;
      row.best_val_epoch = r.epoch;
    }
  }
}

}  // namespace

bool is_experiment_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / experiment_files::kExperiment, ec);
}

json read_experiment_json(const fs::path& dir) {
  if (!is_experiment_dir(dir)) {
    throw UsageError("'" + dir.string() + "' is not an experiment folder (no experiment.json)",
                     "give the --out folder of `tabby run`");
  }
  const fs::path file = dir / experiment_files::kExperiment;
  json j = read_json_file(file);
  if (!j.is_object() || j.value("format", std::string()) != "tabby-experiment" || !j.contains("models") ||
      !j["models"].is_array()) {
    throw Error(file.string() + " is not a tabby experiment file", "run the experiment again with `tabby run`");
  }
  return j;
}

ComparisonRow comparison_row(const fs::path& run_dir, const std::string& name, const std::string& model,
                             const std::string& description) {
  ComparisonRow row;
  row.name = name;
  row.model = model;
  row.description = description;
  row.run_dir = run_dir;
  if (!is_run_dir(run_dir)) {
    row.status = ComparisonStatus::not_run;
    return row;
  }
  const RunRecord run = read_run_record(run_dir);
  row.status = run.status == RunStatus::finished ? ComparisonStatus::finished
               : run.status == RunStatus::failed ? ComparisonStatus::failed
                                                 : ComparisonStatus::interrupted;
  row.error = run.error;
  add_history(row, run_dir);
  if (!run.results) return row;
  const RunResults& results = *run.results;
  row.collapsed_at_epoch = results.collapsed_at_epoch;
  row.params = results.params.total;
  row.trainable_params = results.params.trainable;
  row.fine_tune_trainable_params = results.params.trainable_fine_tune;
  // A resumed run's results time only its last process; the epochs add up all.
  row.train_seconds = std::max(results.train_seconds, row.train_seconds);
  if (results.validation) {
    row.val_accuracy = results.validation->accuracy;
    row.val_loss = results.validation->loss;
  }
  if (results.test) {
    row.test_accuracy = results.test->accuracy;
    row.test_loss = results.test->loss;
  }
  return row;
}

std::vector<ComparisonRow> read_comparison(const fs::path& dir) {
  const json exp = read_experiment_json(dir);
  std::vector<ComparisonRow> rows;
  for (const auto& m : exp["models"]) {
    const std::string name = m.value("name", std::string());
    if (name.empty()) continue;
    rows.push_back(comparison_row(dir / m.value("run", name), name, m.value("model", std::string()),
                                  m.value("description", std::string())));
  }
  return rows;
}

std::vector<std::vector<std::string>> comparison_cells(const std::vector<ComparisonRow>& rows) {
  std::vector<std::vector<std::string>> cells = {{"model", "from", "parameters", "trainable", "epochs",
                                                  "best val accuracy", "test accuracy", "test loss", "train time",
                                                  "status"}};
  for (const auto& r : rows) {
    // A model file shows by its name; the full path is in the JSON and CSV.
    const std::string from = r.model.find('/') == std::string::npos ? r.model : fs::path(r.model).filename().string();
    cells.push_back({r.name, from, r.params > 0 ? thousands(r.params) : "-",
                     r.params <= 0                      ? "-"
                     : r.fine_tune_trainable_params > 0 ? thousands(r.trainable_params) + ", fine-tuned " +
                                                              thousands(r.fine_tune_trainable_params)
                                                        : thousands(r.trainable_params),
                     std::to_string(r.epochs),
                     r.best_val_accuracy < 0 ? "-" : fmt::format("{:.4f} (epoch {})", r.best_val_accuracy, r.best_val_epoch),
                     metric_cell(r.test_accuracy), metric_cell(r.test_loss),
                     r.train_seconds > 0 ? format_duration(r.train_seconds) : "-", status_text(r)});
  }
  return cells;
}

std::string comparison_markdown(const std::vector<ComparisonRow>& rows) {
  const auto cells = comparison_cells(rows);
  std::vector<size_t> widths(cells.front().size(), 3);
  // Column widths in characters, not bytes, would need UTF-8 counting; every cell is ASCII.
  for (const auto& row : cells) {
    for (size_t k = 0; k < row.size(); ++k) widths[k] = std::max(widths[k], row[k].size());
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string s = "|";
    for (size_t k = 0; k < row.size(); ++k) {
      const bool numeric = k >= 2 && k <= 8;
      s += numeric ? fmt::format(" {:>{}} |", row[k], widths[k]) : fmt::format(" {:<{}} |", row[k], widths[k]);
    }
    return s + "\n";
  };
  std::string out = line(cells.front()) + "|";
  for (size_t k = 0; k < widths.size(); ++k) {
    const bool numeric = k >= 2 && k <= 8;
    out += " " + std::string(widths[k] - 1, '-') + (numeric ? ":" : "-") + " |";
  }
  out += "\n";
  for (size_t r = 1; r < cells.size(); ++r) out += line(cells[r]);
  return out;
}

std::string comparison_csv(const std::vector<ComparisonRow>& rows) {
  auto num = [](double v) { return v < 0 ? std::string() : fmt::format("{:.6f}", v); };
  std::string out =
      "model,from,parameters,trainable_parameters,epochs,best_val_accuracy,best_val_epoch,val_accuracy,val_loss,"
      "test_accuracy,test_loss,train_seconds,status\n";
  for (const auto& r : rows) {
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{:.1f},{}\n", csv_field(r.name), csv_field(r.model), r.params,
                       r.trainable_params, r.epochs, num(r.best_val_accuracy),
                       r.best_val_accuracy < 0 ? std::string() : std::to_string(r.best_val_epoch), num(r.val_accuracy),
                       num(r.val_loss), num(r.test_accuracy), num(r.test_loss), r.train_seconds, csv_field(status_text(r)));
  }
  return out;
}

json comparison_json(const std::vector<ComparisonRow>& rows) {
  json out = json::array();
  for (const auto& r : rows) {
    json j = {{"model", r.name},
              {"from", r.model},
              {"description", r.description},
              {"status", enum_name(r.status)},
              {"collapsed_at_epoch", r.collapsed_at_epoch > 0 ? json(r.collapsed_at_epoch) : json(nullptr)},
              {"run", r.run_dir.string()},
              {"parameters", r.params},
              {"trainable_parameters", r.trainable_params},
              {"fine_tune_trainable_parameters", r.fine_tune_trainable_params},
              {"epochs", r.epochs},
              {"best_val_accuracy", metric_json(r.best_val_accuracy)},
              {"best_val_epoch", r.best_val_accuracy < 0 ? json(nullptr) : json(r.best_val_epoch)},
              {"val_accuracy", metric_json(r.val_accuracy)},
              {"val_loss", metric_json(r.val_loss)},
              {"test_accuracy", metric_json(r.test_accuracy)},
              {"test_loss", metric_json(r.test_loss)},
              {"train_seconds", r.train_seconds}};
    if (!r.error.empty()) j["error"] = r.error;
    out.push_back(j);
  }
  return out;
}

namespace {

// Trains, resumes or keeps one model of the experiment; its failure is counted, not thrown.
void run_model(const ExperimentSpec& spec, const Plan& p, const ExperimentJob& job, const std::string& title,
               ExperimentOutcome& outcome) {
  if (p.action == Action::not_selected) return;
  if (p.action == Action::keep) {
    log::infof("{}: finished earlier with the same settings, kept", title);
    outcome.skipped++;
    return;
  }
  log::infof("{} {}", p.action == Action::resume ? "resuming" : "training", title);
  try {
    ensure_directory(p.run_dir);
    TrainOutcome trained;
    if (p.action == Action::resume) {
      trained = resume_train_job(p.run_dir, job.device, job.threads);
      outcome.resumed++;
    } else {
      const TrainJob t = train_job_for(spec, p, job);
      write_file_atomic(p.run_dir / experiment_files::kModelFingerprint, p.fingerprint.dump(2) + "\n");
      trained = run_train_job(t);
      outcome.trained++;
    }
    if (auto report = report_after_training(trained)) log::infof("report: {}", report->html.string());
  } catch (const c10::Error& e) {
    const std::string msg = e.what_without_backtrace();
    log::warnf("{} failed: LibTorch: {}", title, msg.substr(0, msg.find('\n')));
    outcome.failed++;
  } catch (const std::exception& e) {
    log::warnf("{} failed: {}", title, e.what());
    outcome.failed++;
  }
}

void write_report_of(ExperimentOutcome& outcome, const ExperimentJob& job) {
  try {
    ReportOptions options;
    options.device = job.device;
    options.threads = job.threads;
    outcome.report = write_experiment_report(outcome.dir, options).html;
  } catch (const std::exception& e) {
    log::warnf("the experiment report could not be written: {}", e.what());
  }
}

}  // namespace

ExperimentOutcome run_experiment(const ExperimentJob& job) {
  const ExperimentSpec spec = load_experiment_file(job.file);
  const fs::path out = !job.out.empty() ? job.out : !spec.out.empty() ? fs::path(spec.out) : fs::path("runs") / spec.name;
  if (is_run_dir(out)) {
    throw UsageError("'" + out.string() + "' is a run folder of tabby train", "give the experiment its own --out folder");
  }
  std::vector<Plan> plans = plan_models(spec, job, out);
  ensure_directory(out);
  write_experiment_json(spec, out);

  ExperimentOutcome outcome;
  outcome.dir = out;
  outcome.name = spec.name;
  for (size_t k = 0; k < plans.size(); ++k) {
    const Plan& p = plans[k];
    run_model(spec, p, job, fmt::format("model {}/{}: {} ({})", k + 1, plans.size(), p.model.name, p.model.model),
              outcome);
  }
  outcome.rows = read_comparison(out);
  write_comparison_files(out, outcome.rows);
  if (job.report) write_report_of(outcome, job);
  return outcome;
}

}  // namespace tabby
