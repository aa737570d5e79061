#include "tabby/api/classifier.h"

#include <torch/torch.h>

#include <algorithm>
#include <mutex>
#include <numeric>

#include "tabby/api/train_job.h"
#include "tabby/config/model_spec.h"
#include "tabby/image/decode.h"
#include "tabby/image/resize.h"
#include "tabby/nn/network.h"
#include "tabby/inference/device.h"
#include "tabby/inference/precision.h"
#include "tabby/inference/saved_run.h"
#include "tabby/inference/tta.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/settings.h"

namespace tabby {

struct Classifier::Impl {
  std::string name;
  nn::Network net{nullptr};
  torch::Device device = torch::kCPU;
  std::vector<std::string> classes;
  int height = 0, width = 0;
  bool crop = false;
  Precision precision = Precision::fp32;
  Tta tta = Tta::none;
  std::mutex lock;  // one forward pass at a time

  // x is (N,3,H,W) float in [0,255] on the CPU -> (N,C) probabilities, row-major.
  std::vector<float> run(const torch::Tensor& x) {
    std::lock_guard<std::mutex> guard(lock);
    torch::NoGradGuard no_grad;
    torch::Tensor logits;
    {
      AutocastScope autocast(precision, device);
      logits = forward_with_tta(*net, x.to(device), 0, tta);
    }
    const auto probs = net->probabilities(logits.to(torch::kFloat32)).to(torch::kCPU).contiguous();
    return {probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel()};
  }
};

namespace {

Precision inference_precision(const std::string& name, const torch::Device& device) {
  const auto choice = enum_from_name<PrecisionChoice>(name);
  if (!choice || *choice == PrecisionChoice::fp16) {
    throw UsageError("--precision " + name + ": expected fp32, bf16 or auto");
  }
  return resolve_precision(*choice, device);
}

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
  std::vector<fs::path> dirs;
  if (auto dir = env_setting("TABBY_WEIGHTS_DIR")) dirs.emplace_back(*dir);
  for (const auto& root : shared_roots()) dirs.push_back(root / "weights");
  dirs.push_back(cache_dir() / "weights");
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (fs::exists(dir / "imagenet_classes.txt", ec)) return dir / "imagenet_classes.txt";
  }
  throw Error("cannot find imagenet_classes.txt (the 1000 ImageNet class names)",
              "pass --classes FILE, or put it in $TABBY_WEIGHTS_DIR");
}

// (N,H,W,3) uint8 -> (N,3,H,W) float, as the batch loader feeds the network.
torch::Tensor chw_of_rgb(const uint8_t* images, int64_t n, int height, int width) {
  auto hwc = torch::from_blob(const_cast<uint8_t*>(images), {n, height, width, 3}, torch::kUInt8);
  return hwc.permute({0, 3, 1, 2}).to(torch::kFloat32);
}

}  // namespace

void apply_threshold(Classification& c, double threshold) {
  if (c.probability < threshold) c.label = "unknown";
}

Classifier::Classifier(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Classifier Classifier::load(const fs::path& run_dir, const ClassifierOptions& options) {
  configure_threads(options.threads);
  auto impl = std::make_shared<Impl>();
  impl->device = resolve_device(options.device);
  impl->precision = inference_precision(options.precision, impl->device);
  impl->tta = parse_tta(options.tta);
  LoadedRun run = load_run(run_dir, impl->device);
  const RunSettings& s = run.settings();
  impl->name = run.model.name;
  impl->net = run.net;
  impl->classes = s.class_names;
  impl->height = static_cast<int>(s.height);
  impl->width = static_cast<int>(s.width);
  impl->crop = s.crop_to_aspect;
  return Classifier(impl);
}

Classifier Classifier::pretrained(const std::string& model, const std::string& weights, const fs::path& classes_file,
                                  int image_size, const ClassifierOptions& options) {
  if (model.empty()) throw UsageError("give a run folder, or --model NAME for a pretrained model");
  configure_threads(options.threads);
  ModelSpec spec = resolve_model(model);
  auto idx = spec.backbone_index();
  if (!idx) throw UsageError("--model without a run needs a pretrained backbone (e.g. mobilenet_v2)");
  spec.layers.resize(*idx + 1);
  spec.layers[*idx].params["include_top"] = true;
  spec.layers[*idx].params["weights"] = weights;
  auto impl = std::make_shared<Impl>();
  impl->device = resolve_device(options.device);
  impl->precision = inference_precision(options.precision, impl->device);
  impl->tta = parse_tta(options.tta);
  impl->name = spec.name;
  impl->classes = read_lines(classes_file.empty() ? find_imagenet_classes() : classes_file);
  impl->height = impl->width = image_size;
  impl->crop = true;  // like torchvision's ImageNet evaluation (centre crop), not a squash
  impl->net = nn::Network(spec, static_cast<int64_t>(impl->classes.size()), image_size, image_size);
  impl->net->load_pretrained_weights();
  impl->net->to(impl->device);
  impl->net->set_channels_last(true);
  impl->net->eval();
  return Classifier(impl);
}

const std::string& Classifier::name() const { return impl_->name; }
const std::vector<std::string>& Classifier::class_names() const { return impl_->classes; }
int Classifier::input_height() const { return impl_->height; }
int Classifier::input_width() const { return impl_->width; }
bool Classifier::crop_to_aspect() const { return impl_->crop; }

std::vector<float> Classifier::probabilities_rgb(const uint8_t* images, int64_t n) const {
  if (n <= 0) return {};
  return impl_->run(chw_of_rgb(images, n, impl_->height, impl_->width));
}

std::vector<float> Classifier::probabilities_chw(const float* images, int64_t n) const {
  if (n <= 0) return {};
  const auto x = torch::from_blob(const_cast<float*>(images), {n, 3, impl_->height, impl_->width}, torch::kFloat32);
  return impl_->run(x.contiguous(at::MemoryFormat::Contiguous).clone());
}

Classification Classifier::top(const float* probabilities, int k) const {
  const int c = static_cast<int>(impl_->classes.size());
  std::vector<int> order(static_cast<size_t>(c));
  std::iota(order.begin(), order.end(), 0);
  k = std::max(1, std::min(k, c));
  // Ties keep the lower index first, as torch.topk on CPU does for these sizes.
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return probabilities[a] > probabilities[b] || (probabilities[a] == probabilities[b] && a < b); });
  Classification out;
  for (int i = 0; i < k; ++i) {
    const int idx = order[static_cast<size_t>(i)];
    out.top_k.push_back({impl_->classes[static_cast<size_t>(idx)], idx, probabilities[idx]});
  }
  out.label = out.top_k.front().label;
  out.probability = out.top_k.front().probability;
  return out;
}

Classification Classifier::classify_file(const fs::path& file, int top_k) const {
  std::vector<uint8_t> pixels(static_cast<size_t>(impl_->height) * impl_->width * 3);
  load_image_resized(file, impl_->width, impl_->height, impl_->crop, pixels.data());
  return top(probabilities_rgb(pixels.data(), 1).data(), top_k);
}

Classification Classifier::classify_encoded(const void* data, size_t size, int top_k) const {
  std::vector<uint8_t> pixels(static_cast<size_t>(impl_->height) * impl_->width * 3);
  decode_image_resized(static_cast<const uint8_t*>(data), size, impl_->width, impl_->height, impl_->crop, pixels.data());
  return top(probabilities_rgb(pixels.data(), 1).data(), top_k);
}

Classification Classifier::classify_rgb(const uint8_t* rgb, int width, int height, int top_k) const {
  if (!rgb || width < 1 || height < 1) throw UsageError("classify_rgb: an empty image");
  Image image(width, height);
  std::copy(rgb, rgb + image.pixels.size(), image.pixels.begin());
  std::vector<uint8_t> pixels(static_cast<size_t>(impl_->height) * impl_->width * 3);
  const CropBox box = impl_->crop ? center_crop_box(width, height, impl_->width, impl_->height)
                                  : CropBox{0, 0, width, height};
  resize_bilinear_region_into(image, box, impl_->width, impl_->height, pixels.data());
  return top(probabilities_rgb(pixels.data(), 1).data(), top_k);
}

}  // namespace tabby
