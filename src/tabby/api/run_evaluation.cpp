#include "tabby/api/run_evaluation.h"

#include "tabby/api/data_source.h"
#include "tabby/dataset/shuffle.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/inference/device.h"
#include "tabby/inference/saved_run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/quiet_scope.h"
#include "tabby/util/rng.h"

namespace tabby {

namespace {

using nlohmann::json;

constexpr uint64_t kPredictionGridSeedPurpose = 0x50524544;  // "PRED"
constexpr int kTopLosses = 8;                      // mistakes shown (two rows of four)

std::optional<fs::file_time_type> modified(const fs::path& p) {
  std::error_code ec;
  auto t = fs::last_write_time(p, ec);
  if (ec) return std::nullopt;
  return t;
}

DataArgs data_args_of(const RunSettings& s) {
  DataArgs a = s.data;
  a.class_names = s.class_names;
  return a;
}

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
  const RunSettings& s = run.settings();
  ResolvedData data = resolve_data(data_args_of(s));
  const Dataset* dataset = data.test ? &*data.test : data.validation ? &*data.validation : nullptr;
  if (!dataset) return std::nullopt;
  const std::string split = data.test ? "test" : "validation";
  log::infof("evaluating {} on its {} data ({} images) for the report", run_dir.string(), split, dataset->size());
  ImageCacheOptions o = ImageCacheOptions::model_input(s.height, s.width, s.crop_to_aspect, split + " images");
  o.threads = options.threads;
  ImageCache cache = build_image_cache(*dataset, o);
  BatchLoader loader(cache.rows(), cache.labels, LoaderOptions::in_order(s.train.batch_size, device));
  EvalResult r = evaluate_network(*run.net, loader, 0, /*keep_outputs=*/true);
  EvaluateOutcome outcome = summarize_evaluation(r, s.class_names, cache.paths, kTopLosses);
  outcome.skipped = cache.skipped;
  outcome.data_source = dataset->source;
  return make_run_evaluation(outcome, split, options.grid_size);
}

void save_evaluation(const fs::path& run_dir, const RunEvaluation& ev) {
  write_file_atomic(run_dir / run_report_files::kEvaluation, to_json(ev).dump(1) + "\n");
}

// ------------------------------------------------------------ reading evaluation.json

void read_confusion(EvaluateOutcome& o, const json& e) {
  const int n = static_cast<int>(o.class_names.size());
  const json& matrix = e.at("confusion_matrix").at("matrix");
  if (!matrix.is_array() || static_cast<int>(matrix.size()) != n) throw Error("confusion matrix size");
  o.confusion.num_classes = n;
  for (const auto& row : matrix) {
    if (!row.is_array() || static_cast<int>(row.size()) != n) throw Error("confusion matrix row");
    for (const auto& v : row) o.confusion.counts.push_back(v.get<int64_t>());
  }
  o.report = metrics::classification_report(o.confusion, o.class_names);
}

void read_files(EvaluateOutcome& o, const json& e) {
  for (const auto& m : e.value("top_losses", json::array())) {
    o.top_losses.push_back({m.at("file").get<std::string>(), m.at("label").get<std::string>(),
                            m.at("predicted").get<std::string>(), m.at("probability").get<double>(),
                            m.at("loss").get<double>()});
  }
  for (const auto& s : e.value("skipped", json::array())) {
    o.skipped.push_back({s.at("file").get<std::string>(), s.at("reason").get<std::string>()});
  }
}

EvaluateOutcome outcome_from_json(const json& e) {
  EvaluateOutcome o;
  o.class_names = e.at("classes").get<std::vector<std::string>>();
  o.result.accuracy = e.at("accuracy").get<double>();
  o.result.loss = e.at("loss").get<double>();
  o.result.count = e.at("num_images").get<int64_t>();
  o.data_source = e.value("data", std::string());
  if (const auto it = e.find("predicts_one_class"); it != e.end() && it->is_string()) o.one_class = it->get<std::string>();
  const std::string baseline_class = e.value("baseline_class", std::string());
  o.baseline.accuracy = e.value("baseline_accuracy", 0.0);
  for (size_t k = 0; k < o.class_names.size(); ++k) {
    if (o.class_names[k] == baseline_class) o.baseline.class_index = static_cast<int>(k);
  }
  read_confusion(o, e);
  read_files(o, e);
  return o;
}

std::vector<PredictionSample> samples_from_json(const json& j, int num_classes) {
  std::vector<PredictionSample> samples;
  for (const auto& s : j.value("samples", json::array())) {
    PredictionSample p;
    p.file = s.at("file").get<std::string>();
    p.label = s.at("label").get<int>();
    p.predicted = s.at("predicted").get<int>();
    p.probability = s.at("probability").get<double>();
    if (p.label < 0 || p.label >= num_classes || p.predicted < 0 || p.predicted >= num_classes) {
      throw Error("label out of range");
    }
    samples.push_back(p);
  }
  return samples;
}

// ------------------------------------------------------------ reusing training's evaluation

// The dataset behind a training outcome's final evaluation, when its rows are
// that dataset's files in order (the decoded rows are the files minus the
// skipped ones: with none skipped they can be named without decoding again).
std::optional<Dataset> dataset_of_rows(const TrainOutcome& outcome, const EvalResult& r, const std::string& split) {
  const RunRecord record = read_run_record(outcome.run_dir);
  const auto& skipped = record.decoded ? record.decoded->skipped_files : std::map<std::string, int64_t>{};
  const auto it = skipped.find(split);
  if (it == skipped.end() || it->second != 0) return std::nullopt;
  ResolvedData data = [&] {
    log::QuietScope already_announced;
    return resolve_data(data_args_of(record.settings));
  }();
  std::optional<Dataset> d = split == "test" ? data.test : data.validation;
  if (!d || static_cast<int64_t>(d->size()) != r.count) return std::nullopt;
  if (!r.indices.defined()) return d;
  const auto idx = r.indices.to(torch::kLong).contiguous();
  const auto labels = r.labels.to(torch::kLong).contiguous();
  for (int64_t i = 0; i < r.count; ++i) {
    const int64_t row = idx[i].item<int64_t>();
    if (row < 0 || row >= r.count || d->samples[static_cast<size_t>(row)].label != labels[i].item<int64_t>()) {
      return std::nullopt;
    }
  }
  return d;
}

}  // namespace

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
  const auto order = seeded_permutation(static_cast<size_t>(r.count), derive_seed(seed, {kPredictionGridSeedPurpose}));
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
    ev.outcome = outcome_from_json(j.at("evaluation"));
    ev.samples = samples_from_json(j, static_cast<int>(ev.outcome.class_names.size()));
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

bool cache_training_evaluation(const TrainOutcome& outcome) {
  const EvalResult* r = outcome.test ? &*outcome.test : outcome.validation ? &*outcome.validation : nullptr;
  if (!r || !r->probabilities.defined() || r->count <= 0) return false;
  const std::string split = outcome.test ? "test" : "validation";
  const std::optional<Dataset> d = dataset_of_rows(outcome, *r, split);
  if (!d) return false;
  std::vector<fs::path> paths;
  for (const auto& s : d->samples) paths.push_back(s.path);
  const RunRecord record = read_run_record(outcome.run_dir);
  EvaluateOutcome o = summarize_evaluation(*r, record.settings.class_names, paths, kTopLosses);
  o.data_source = d->source;
  save_evaluation(outcome.run_dir, make_run_evaluation(o, split));
  return true;
}

}  // namespace tabby
