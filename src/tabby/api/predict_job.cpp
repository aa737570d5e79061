#include "tabby/api/predict_job.h"

#include <fmt/format.h>

#include <algorithm>

#include "tabby/api/train_job.h"
#include "tabby/config/model_spec.h"
#include "tabby/dataset/image_files.h"
#include "tabby/image/resize.h"
#include "tabby/nn/network.h"
#include "tabby/train/device.h"
#include "tabby/train/run.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/settings.h"

namespace tabby {

namespace {

std::vector<std::string> read_lines(const fs::path& file) {
  std::vector<std::string> lines;
  std::string text = read_file(file), line;
  for (char ch : text) {
    if (ch == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      lines.push_back(line);
      line.clear();
    } else {
      line += ch;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

fs::path find_imagenet_classes() {
  if (auto dir = env_setting("TABBY_WEIGHTS_DIR")) {
    if (fs::exists(fs::path(*dir) / "imagenet_classes.txt")) return fs::path(*dir) / "imagenet_classes.txt";
  }
  for (const auto& root : shared_roots()) {
    if (fs::exists(root / "weights" / "imagenet_classes.txt")) return root / "weights" / "imagenet_classes.txt";
  }
  if (fs::exists(cache_dir() / "weights" / "imagenet_classes.txt")) return cache_dir() / "weights" / "imagenet_classes.txt";
  throw Error("cannot find imagenet_classes.txt (the 1000 ImageNet class names)",
              "pass --classes FILE, or put it in $TABBY_WEIGHTS_DIR");
}

}  // namespace

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

// A model ready to predict and what its inputs must look like.
struct Predictor {
  nn::Network net{nullptr};
  std::vector<std::string> classes;
  int64_t height = 0, width = 0;
  bool crop = false;
};

Predictor run_predictor(const PredictJob& job, const torch::Device& device) {
  LoadedRun run = load_run(job.run, device);
  const RunSettings& s = run.settings();
  return {run.net, s.class_names, s.height, s.width, s.crop_to_aspect};
}

// A pretrained backbone with its own ImageNet classifier.
Predictor pretrained_predictor(const PredictJob& job, const torch::Device& device) {
  if (job.model.empty()) throw UsageError("give a run folder, or --model NAME for a pretrained model");
  ModelSpec spec = resolve_model(job.model);
  auto idx = spec.backbone_index();
  if (!idx) throw UsageError("--model without a run needs a pretrained backbone (e.g. mobilenet_v2)");
  spec.layers.resize(*idx + 1);
  spec.layers[*idx].params["include_top"] = true;
  spec.layers[*idx].params["weights"] = job.weights;
  Predictor p;
  p.classes = read_lines(job.classes_file.empty() ? find_imagenet_classes() : job.classes_file);
  p.height = p.width = job.image_size;
  p.crop = true;  // like torchvision's ImageNet evaluation (centre crop), not a squash
  p.net = nn::Network(spec, static_cast<int64_t>(p.classes.size()), p.height, p.width);
  p.net->load_pretrained_weights();
  p.net->to(device);
  p.net->set_channels_last(true);
  p.net->eval();
  return p;
}

// out[begin, end): the files decoded into one batch, the readable ones predicted.
void predict_batch(Predictor& p, const std::vector<fs::path>& files, size_t begin, size_t end, int top_k,
                   const torch::Device& device, std::vector<Prediction>& out) {
  const int64_t row = p.height * p.width * 3;
  torch::Tensor batch = torch::empty({static_cast<int64_t>(end - begin), p.height, p.width, 3}, torch::kUInt8);
  std::vector<size_t> ok;
  for (size_t i = begin; i < end; ++i) {
    out[i].file = files[i];
    try {
      load_image_resized(files[i], static_cast<int>(p.width), static_cast<int>(p.height), p.crop,
                         batch.data_ptr<uint8_t>() + static_cast<int64_t>(ok.size()) * row);
      ok.push_back(i);
    } catch (const Error& e) {
      out[i].error = e.what();
    }
  }
  if (ok.empty()) return;
  auto x = batch.narrow(0, 0, static_cast<int64_t>(ok.size())).permute({0, 3, 1, 2}).to(device, torch::kFloat32);
  auto probs = p.net->probabilities(p.net->forward(x)).to(torch::kCPU, torch::kFloat32);
  const int64_t k = std::min<int64_t>(top_k, probs.size(1));
  auto top = probs.topk(k, 1);
  auto values = std::get<0>(top), indices = std::get<1>(top);
  for (size_t j = 0; j < ok.size(); ++j) {
    for (int64_t t = 0; t < k; ++t) {
      const int64_t c = indices[static_cast<int64_t>(j)][t].item<int64_t>();
      out[ok[j]].top.emplace_back(p.classes[c], values[static_cast<int64_t>(j)][t].item<double>());
    }
  }
}

}  // namespace

std::vector<Prediction> run_predict_job(const PredictJob& job) {
  if (job.top_k < 1) throw UsageError("--top-k must be at least 1");
  if (job.batch_size < 1) throw UsageError("--batch-size must be at least 1");
  configure_threads(job.threads);
  const torch::Device device = resolve_device(job.device);
  const std::vector<fs::path> files = collect_image_files(job.inputs);
  Predictor p = job.run.empty() ? pretrained_predictor(job, device) : run_predictor(job, device);
  std::vector<Prediction> out(files.size());
  torch::NoGradGuard no_grad;
  for (size_t begin = 0; begin < files.size(); begin += static_cast<size_t>(job.batch_size)) {
    const size_t end = std::min(files.size(), begin + static_cast<size_t>(job.batch_size));
    predict_batch(p, files, begin, end, job.top_k, device, out);
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
