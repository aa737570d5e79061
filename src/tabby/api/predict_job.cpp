#include "tabby/api/predict_job.h"

#include <fmt/format.h>

#include <algorithm>

#include "tabby/api/classifier.h"
#include "tabby/config/model_spec.h"
#include "tabby/dataset/image_files.h"
#include "tabby/image/resize.h"
#include "tabby/dataset/csv.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {

std::vector<fs::path> collect_image_files(const std::vector<std::string>& inputs) {
  std::vector<fs::path> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    fs::path p(in);
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_regular_file(ec) && has_image_extension(it->path())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) throw UsageError("'" + in + "' holds no image files (" + image_extensions_text() + ")");
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      files.push_back(p);
    } else {
      throw UsageError("'" + in + "' does not exist");
    }
  }
  if (files.empty()) throw UsageError("no images to predict", "give image files or folders");
  return files;
}

namespace {

// The files [begin, end) decoded into one batch; the readable ones predicted.
void predict_batch(const Classifier& c, const PredictJob& job, const std::vector<fs::path>& files, size_t begin,
                   size_t end, std::vector<Prediction>& out) {
  const size_t row = static_cast<size_t>(c.input_height()) * c.input_width() * 3;
  std::vector<uint8_t> batch(row * (end - begin));
  std::vector<size_t> ok;
  for (size_t i = begin; i < end; ++i) {
    out[i].file = files[i];
    try {
      load_image_resized(files[i], c.input_width(), c.input_height(), c.crop_to_aspect(), batch.data() + ok.size() * row);
      ok.push_back(i);
    } catch (const Error& e) {
      out[i].error = e.what();
    }
  }
  const std::vector<float> probs = c.probabilities_rgb(batch.data(), static_cast<int64_t>(ok.size()));
  const size_t classes = c.class_names().size();
  for (size_t j = 0; j < ok.size(); ++j) {
    const float* p = probs.data() + j * classes;
    Classification top = c.top(p, job.top_k);
    apply_threshold(top, job.threshold);
    Prediction& pred = out[ok[j]];
    for (const auto& s : top.top_k) pred.top.emplace_back(s.label, s.probability);
    if (top.label == "unknown") pred.top.front().first = "unknown";
    pred.probabilities.assign(p, p + classes);
  }
}

}  // namespace

size_t PredictOutcome::failed() const {
  size_t n = 0;
  for (const auto& p : predictions) n += !p.error.empty();
  return n;
}

PredictOutcome run_predict_job(const PredictJob& job) {
  if (job.top_k < 1) throw UsageError("--top-k must be at least 1");
  if (job.batch_size < 1) throw UsageError("--batch-size must be at least 1");
  if (job.threshold < 0 || job.threshold > 1) throw UsageError("--threshold must be between 0 and 1");
  const std::vector<fs::path> files = collect_image_files(job.inputs);
  const ClassifierOptions options{job.device, job.threads, job.precision, job.tta};
  const Classifier c = job.run.empty() ? Classifier::pretrained(job.model, job.weights, job.classes_file,
                                                                static_cast<int>(job.image_size), options)
                                       : Classifier::load(job.run, options);
  PredictOutcome out{c.class_names(), std::vector<Prediction>(files.size())};
  for (size_t begin = 0; begin < files.size(); begin += static_cast<size_t>(job.batch_size)) {
    const size_t end = std::min(files.size(), begin + static_cast<size_t>(job.batch_size));
    predict_batch(c, job, files, begin, end, out.predictions);
  }
  return out;
}

std::string predictions_to_csv(const PredictOutcome& outcome) {
  std::string out = "path,label,probability";
  for (const auto& name : outcome.class_names) out += ",prob_" + csv_field(name);
  out += "\n";
  std::vector<const Prediction*> rows;
  for (const auto& p : outcome.predictions) {
    if (p.error.empty()) rows.push_back(&p);
  }
  std::sort(rows.begin(), rows.end(), [](const Prediction* a, const Prediction* b) { return a->file < b->file; });
  for (const Prediction* p : rows) {
    out += csv_field(p->file.string()) + "," + csv_field(p->top.front().first) + "," +
           fmt::format("{:.6f}", p->top.front().second);
    for (float v : p->probabilities) out += fmt::format(",{:.6f}", v);
    out += "\n";
  }
  return out;
}

nlohmann::json predictions_to_json(const std::vector<Prediction>& predictions) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& p : predictions) {
    nlohmann::json j = {{"file", p.file.string()}};
    if (!p.error.empty()) {
      j["error"] = p.error;
    } else {
      j["label"] = p.top.front().first;
      j["probability"] = p.top.front().second;
      if (p.top.size() > 1) {
        nlohmann::json top = nlohmann::json::array();
        for (const auto& [label, prob] : p.top) top.push_back({{"label", label}, {"probability", prob}});
        j["top"] = top;
      }
    }
    arr.push_back(j);
  }
  return arr;
}

std::string predictions_to_text(const std::vector<Prediction>& predictions) {
  std::string out;
  for (const auto& p : predictions) {
    if (!p.error.empty()) {
      out += fmt::format("{}\terror: {}\n", p.file.string(), p.error);
      continue;
    }
    out += p.file.string();
    for (const auto& [label, prob] : p.top) out += fmt::format("\t{} ({:.4f})", label, prob);
    out += "\n";
  }
  return out;
}

}  // namespace tabby
