#include "tabby/api/evaluate_job.h"

#include <fmt/format.h>

#include <numeric>

#include "tabby/api/data_source.h"
#include "tabby/api/train_job.h"
#include "tabby/pipeline/batch_loader.h"
#include "tabby/train/collapse.h"
#include "tabby/inference/device.h"
#include "tabby/inference/saved_run.h"
#include "tabby/util/error.h"

namespace tabby {

EvaluateOutcome summarize_evaluation(const EvalResult& r, const std::vector<std::string>& class_names,
                                     const std::vector<std::filesystem::path>& paths, int top_losses) {
  EvaluateOutcome out;
  out.class_names = class_names;
  out.result = r;
  const int c = static_cast<int>(class_names.size());
  std::vector<int> y_true, y_pred;
  std::vector<int64_t> counts(class_names.size(), 0);
  if (r.count > 0) {
    auto labels = r.labels.to(torch::kLong).contiguous();
    auto pred = r.probabilities.argmax(1).to(torch::kLong).contiguous();
    for (int64_t i = 0; i < r.count; ++i) {
      y_true.push_back(static_cast<int>(labels[i].item<int64_t>()));
      y_pred.push_back(static_cast<int>(pred[i].item<int64_t>()));
      counts[y_true.back()]++;
    }
  }
  out.baseline = metrics::majority_baseline(counts);
  if (const auto only = single_predicted_class(r.predicted_counts, counts); only && *only < c) {
    out.one_class = class_names[static_cast<size_t>(*only)];
  }
  out.confusion = metrics::confusion_matrix(y_true, y_pred, c);
  out.report = metrics::classification_report(out.confusion, class_names);
  if (top_losses > 0 && r.count > 0) {
    std::vector<int64_t> wrong;
    for (int64_t i = 0; i < r.count; ++i) {
      if (y_true[i] != y_pred[i]) wrong.push_back(i);
    }
    auto losses = r.losses.contiguous();
    std::sort(wrong.begin(), wrong.end(),
              [&](int64_t a, int64_t b) { return losses[a].item<float>() > losses[b].item<float>(); });
    for (size_t k = 0; k < wrong.size() && static_cast<int>(k) < top_losses; ++k) {
      const int64_t i = wrong[k];
      const int64_t row = r.indices.defined() ? r.indices[i].item<int64_t>() : i;
      Mistake m;
      if (row >= 0 && static_cast<size_t>(row) < paths.size()) m.file = paths[row];
      m.true_label = class_names[y_true[i]];
      m.predicted_label = class_names[y_pred[i]];
      m.probability = r.probabilities[i][y_pred[i]].item<double>();
      m.loss = losses[i].item<double>();
      out.top_losses.push_back(m);
    }
  }
  out.paths = paths;
  return out;
}

nlohmann::json EvaluateOutcome::to_json() const {
  nlohmann::json mistakes = nlohmann::json::array();
  for (const auto& m : top_losses) {
    mistakes.push_back({{"file", m.file.string()}, {"label", m.true_label}, {"predicted", m.predicted_label},
                        {"probability", m.probability}, {"loss", m.loss}});
  }
  nlohmann::json skipped_files = nlohmann::json::array();
  for (const auto& s : skipped) skipped_files.push_back({{"file", s.path.string()}, {"reason", s.reason}});
  return {{"accuracy", result.accuracy},
          {"loss", result.loss},
          {"num_images", result.count},
          {"baseline_accuracy", baseline.accuracy},
          {"baseline_class", baseline.class_index >= 0 ? class_names[baseline.class_index] : ""},
          {"classes", class_names},
          {"classification_report", metrics::to_json(report)},
          {"confusion_matrix", metrics::to_json(confusion, class_names)},
          {"top_losses", mistakes},
          {"predicts_one_class", one_class ? nlohmann::json(*one_class) : nlohmann::json(nullptr)},
          {"skipped", skipped_files},
          {"data", data_source}};
}

std::string EvaluateOutcome::to_text() const {
  std::string out;
  out += fmt::format("{} images from {}\n", result.count, data_source);
  out += fmt::format("loss: {:.4f} - accuracy: {:.4f}\n", result.loss, result.accuracy);
  if (baseline.class_index >= 0) {
    out += fmt::format("majority-class baseline: {:.4f} (always '{}')\n", baseline.accuracy,
                       class_names[baseline.class_index]);
  }
  if (one_class) {
    out += "warning: " + one_class_evaluation_note(*one_class, result.count, result.accuracy) + "\n";
    out += "hint: " + collapse_hint() + "\n";
  }
  out += "\n" + metrics::format_classification_report(report, 4);
  out += "\nconfusion matrix (rows: true, columns: predicted)\n" + metrics::format_confusion_matrix(confusion, class_names);
  if (!top_losses.empty()) {
    out += "\nmost confidently wrong:\n";
    for (const auto& m : top_losses) {
      out += fmt::format("  {}  true {}, predicted {} ({:.3f}), loss {:.3f}\n", m.file.string(), m.true_label,
                         m.predicted_label, m.probability, m.loss);
    }
  }
  if (!skipped.empty()) out += "\n" + describe_skipped(skipped) + "\n";
  return out;
}

EvaluateOutcome run_evaluate_job(const EvaluateJob& job) {
  configure_threads(job.threads);
  const Tta tta = parse_tta(job.tta);
  const torch::Device device = resolve_device(job.device);
  LoadedRun run = load_run(job.run, device, job.weights);
  const RunSettings& s = run.settings();
  Dataset data = load_dataset(job.data, job.split, s.class_names);
  ImageCache cache =
      build_image_cache(data, ImageCacheOptions::model_input(s.height, s.width, s.crop_to_aspect, "evaluation images"));
  const int64_t batch = job.batch_size > 0 ? job.batch_size : s.train.batch_size;
  BatchLoader loader(cache.rows(), cache.labels, LoaderOptions::in_order(batch, device));
  EvalResult r = evaluate_network(*run.net, loader, 0, /*keep_outputs=*/true, Precision::fp32, tta);
  EvaluateOutcome out = summarize_evaluation(r, s.class_names, cache.paths, job.top_losses);
  out.skipped = cache.skipped;
  out.data_source = data.source;
  return out;
}

}  // namespace tabby
