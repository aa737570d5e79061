#include "tabby/nn/network.h"

#include <optional>

#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/weights/pretrained.h"
#include "tabby/weights/weights_file.h"

namespace tabby::nn {

namespace {

bool starts_with_layer(const std::string& key, const std::string& layer) {
  return key.size() > layer.size() && key.compare(0, layer.size(), layer) == 0 && key[layer.size()] == '.';
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

// Rescaling maps the range affinely; augmentation keeps it; anything else
// (per-channel normalisation, learnt layers) leaves it unknown.
std::optional<std::pair<double, double>> range_after(const LayerSpec& ls,
                                                     std::optional<std::pair<double, double>> range) {
  if (!range || is_augmentation_layer(ls.type)) return range;
  if (ls.type != "Rescaling") return std::nullopt;
  const double scale = ls.get_double("scale", 1.0), offset = ls.get_double("offset", 0.0);
  const double a = range->first * scale + offset, b = range->second * scale + offset;
  return std::make_pair(std::min(a, b), std::max(a, b));
}

// Colour augmentation clamps to the values its layer sees: [0, 255] at the
// model's input, [-1, 1] after the tutorials' Rescaling(1/127.5, -1).
LayerSpec with_value_range(const LayerSpec& ls, const std::optional<std::pair<double, double>>& range) {
  if (!takes_value_range(ls.type) || ls.has("value_range")) return ls;
  if (!range) {
    throw UsageError("layer '" + ls.name + "' (" + ls.type + "): the range of its input values is not known here",
                     "put it before Normalization, or give value_range = [lo, hi]");
  }
  LayerSpec out = ls;
  out.params["value_range"] = {range->first, range->second};
  return out;
}

}  // namespace

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::pair<int64_t, int64_t> count_keras_params(const torch::nn::Module& module) {
  int64_t trainable = 0, frozen = 0;
  for (const auto& p : module.parameters(true)) (p.requires_grad() ? trainable : frozen) += p.numel();
  // Keras counts batch-norm moving statistics as non-trainable parameters.
  for (const auto& b : module.named_buffers(true)) {
    if (ends_with(b.key(), "running_mean") || ends_with(b.key(), "running_var")) frozen += b.value().numel();
  }
  return {trainable, frozen};
}

NetworkImpl::NetworkImpl(const ModelSpec& spec, int64_t num_classes, int64_t height, int64_t width)
    : spec_(spec), num_classes_(num_classes), height_(height), width_(width) {
  if (num_classes < 1) throw Error("a model needs at least one class");
  if (height < 8 || width < 8 || height > 4096 || width > 4096) {
    throw UsageError("image size " + std::to_string(height) + "x" + std::to_string(width) + " is out of range",
                     "use an --image-size between 8 and 4096");
  }
  std::vector<int64_t> shape = {3, height, width};
  // The range of the pixel values each layer sees, while it is known.
  std::optional<std::pair<double, double>> range = std::make_pair(0.0, 255.0);
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    const LayerSpec& ls = spec.layers[i];
    const auto range_before = range;
    range = range_after(ls, range);
    NetworkEntry entry;
    entry.name = ls.name;
    entry.type = ls.type;
    if (ls.type == "Backbone") {
      if (shape.size() != 3 || shape[0] != 3) {
        throw Error("layer '" + ls.name + "' (Backbone) needs the 3-channel image as input",
                    "put only preprocessing and Random* layers before the backbone");
      }
      const std::string arch = ls.get_string("arch", "");
      if (arch.empty()) throw Error("layer '" + ls.name + "' (Backbone): `arch` is required");
      const bool include_top = ls.get_bool("include_top", false);
      const bool is_last = i + 1 == spec.layers.size();
      if (include_top && !is_last) {
        throw Error("layer '" + ls.name + "': include_top = true makes the backbone the output layer",
                    "remove the layers after it, or set include_top = false");
      }
      BackboneOptions options;
      options.include_top = include_top;
      options.num_classes = num_classes;
      // Unset: the registry's default for the arch (config/backbone_table.h).
      if (ls.params.contains("stochastic_depth")) options.stochastic_depth = ls.get_double("stochastic_depth", 0.0);
      entry.backbone = make_backbone(arch, options);
      register_module(ls.name, entry.backbone);
      backbone_index_ = i;
      if (!ls.get_bool("trainable", true)) {
        const bool pretrained = ls.get_string("weights", "imagenet") != "none";
        entry.backbone->set_trainable_blocks(0, ls.get_bool("bn_inference", pretrained));
      } else if (ls.get_bool("bn_inference", false)) {
        // The whole backbone trains with batch norm's statistics held (fine-tuning on little data).
        entry.backbone->set_trainable_blocks(-1, true);
      }
      torch::NoGradGuard no_grad;
      const bool was = entry.backbone->is_training();
      entry.backbone->eval();
      try {
        auto y = entry.backbone->forward(torch::zeros({1, 3, height, width}));
        shape.assign(y.sizes().begin() + 1, y.sizes().end());
      } catch (const c10::Error&) {
        throw UsageError(arch + " cannot process " + std::to_string(height) + "x" + std::to_string(width) +
                             " images (too small)",
                         "use a larger --image-size, e.g. 160 or 224");
      }
      entry.backbone->train(was);
    } else {
      // A bad setting is found only here; say which config file holds it.
      const std::string from = spec.source.empty() ? std::string() : spec.source + ": ";
      try {
        entry.layer = make_layer(with_value_range(ls, range_before), shape, num_classes);
        shape = infer_output_shape(*entry.layer, shape);
      } catch (const UsageError& e) {
        throw UsageError(from + e.what(), e.hint());
      } catch (const Error& e) {
        throw Error(from + e.what(), e.hint());
      }
      register_module(ls.name, entry.layer);
    }
    entry.output_shape = shape;
    entries_.push_back(std::move(entry));
  }
  // Head layer names must not collide with the backbone's torchvision names.
  if (auto bb = backbone()) {
    for (const auto& child : bb->named_children()) {
      for (const auto& e : entries_) {
        if (!e.backbone && e.name == child.key()) {
          throw Error("layer name '" + e.name + "' clashes with the backbone's '" + child.key() + "' weights",
                      "give the layer another name");
        }
      }
    }
  }
  decide_output();
}

void NetworkImpl::decide_output() {
  const NetworkEntry& last = entries_.back();
  if (last.output_shape.size() != 1) {
    throw Error("the model's last layer '" + last.name + "' outputs " + shape_text(last.output_shape) +
                    ", not one score per class",
                "end the model with Flatten or global pooling and a Dense layer");
  }
  output_.units = last.output_shape[0];
  output_.activation = ActivationKind::None;
  if (auto dense = std::dynamic_pointer_cast<DenseImpl>(last.layer)) {
    output_.activation = dense->activation();
    dense->emit_logits();
  } else if (auto act = std::dynamic_pointer_cast<ActivationLayerImpl>(last.layer)) {
    output_.activation = act->activation();
    act->emit_logits();
  }
  if (output_.activation != ActivationKind::None && output_.activation != ActivationKind::Softmax &&
      output_.activation != ActivationKind::Sigmoid) {
    throw Error(std::string("the output layer's activation is ") + activation_name(output_.activation),
                "use softmax, sigmoid or none (logits) on the last layer");
  }
  if (output_.units == 1) {
    if (num_classes_ != 2) {
      throw Error("the output layer has 1 unit (binary) but the data has " + std::to_string(num_classes_) + " classes",
                  "a one-unit sigmoid output needs exactly 2 classes; leave `units` out to get one per class");
    }
    if (output_.activation == ActivationKind::Softmax) {
      throw Error("a one-unit output with softmax always predicts 1", "use activation = \"sigmoid\" for one unit");
    }
  } else if (output_.units != num_classes_) {
    throw Error("the output layer has " + std::to_string(output_.units) + " units but the data has " +
                    std::to_string(num_classes_) + " classes",
                "leave `units` out of the last Dense layer to get one unit per class");
  }
}

torch::Tensor NetworkImpl::forward(torch::Tensor x) { return forward_range(std::move(x), 0, entries_.size()); }

void NetworkImpl::set_channels_last(bool on) {
  channels_last_ = on;
  const auto format = on ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (auto& p : parameters(true)) {
    if (p.dim() == 4) p.set_data(p.contiguous(format));
  }
}

torch::Tensor NetworkImpl::forward_range(torch::Tensor x, size_t begin, size_t end) {
  end = std::min(end, entries_.size());
  if (channels_last_ && x.dim() == 4) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  for (size_t i = begin; i < end; ++i) {
    const NetworkEntry& e = entries_[i];
    if (e.backbone) {
      x = e.backbone->forward(x);
    } else {
      if (e.layer->is_augmentation() && !is_training()) continue;
      x = e.layer->forward(x);
    }
  }
  return x;
}

torch::Tensor NetworkImpl::probabilities(const torch::Tensor& logits) const {
  if (output_.binary()) {
    auto p = torch::sigmoid(logits.view({-1}));
    return torch::stack({1 - p, p}, 1);
  }
  if (output_.activation == ActivationKind::Sigmoid) {
    // Independent sigmoid units (multi-label style) still rank classes; keep them as given.
    return torch::sigmoid(logits);
  }
  return torch::softmax(logits, 1);
}

Value NetworkImpl::export_onnx(GraphWriter& g, const Value& images) {
  torch::NoGradGuard no_grad;
  eval();
  Value x = images;
  for (auto& e : entries_) x = e.backbone ? e.backbone->export_onnx(g, x) : e.layer->export_onnx(g, x);
  const torch::Tensor probs = probabilities(x.sample);
  if (output_.binary()) {
    // One sigmoid unit becomes two columns (1 - p, p), as probabilities() gives them.
    const Value p = g.node("Sigmoid", {x.name}, {}, torch::sigmoid(x.sample));
    const Value q = g.node("Sub", {g.constant("binary.one", torch::tensor(1.0f)), p.name}, {}, 1 - p.sample);
    return g.node("Concat", {q.name, p.name}, {{"axis", int64_t{1}}}, probs);
  }
  if (output_.activation == ActivationKind::Sigmoid) return g.node("Sigmoid", {x.name}, {}, probs);
  return g.node("Softmax", {x.name}, {{"axis", int64_t{1}}}, probs);
}

torch::Tensor NetworkImpl::predicted_classes(const torch::Tensor& logits) const {
  if (output_.binary()) return (logits.view({-1}) > 0).to(torch::kLong);
  return logits.argmax(1);
}

Backbone NetworkImpl::backbone() const {
  return backbone_index_ ? entries_[*backbone_index_].backbone : nullptr;
}

void NetworkImpl::load_pretrained_weights() {
  if (!backbone_index_) return;
  const LayerSpec& ls = spec_.layers[*backbone_index_];
  const std::string weights = ls.get_string("weights", "imagenet");
  if (weights == "none") return;
  auto bb = backbone();
  std::filesystem::path file =
      weights == "imagenet" ? resolve_pretrained_weights(bb->arch()) : std::filesystem::path(weights);
  TensorMap state;
  try {
    state = to_torch(read_weights_file(file));
  } catch (const Error& e) {
    throw Error("cannot load weights for " + bb->arch() + " from '" + file.string() + "': " + e.what(), e.hint());
  }
  // A top for another number of classes starts fresh (torchvision's fine-tuning recipe).
  bool reinit_top = false;
  if (bb->include_top()) {
    auto own = module_state(*bb);
    for (auto it = state.begin(); it != state.end();) {
      auto mine = own.find(it->first);
      bool top = false;
      for (const auto& p : bb->top_prefixes()) top = top || it->first.rfind(p + ".", 0) == 0;
      if (top && mine != own.end() && mine->second.sizes() != it->second.sizes()) {
        reinit_top = true;
        it = state.erase(it);
      } else {
        ++it;
      }
    }
  }
  LoadReport report = load_backbone_state(*bb, state, /*strict=*/false);
  // Tensors of the top we chose to re-initialise are not a problem.
  if (reinit_top) {
    std::vector<std::string> missing;
    for (const auto& m : report.missing) {
      bool top = false;
      for (const auto& p : bb->top_prefixes()) top = top || m.rfind(p + ".", 0) == 0;
      if (!top) missing.push_back(m);
    }
    report.missing = missing;
  }
  if (!report.ok()) {
    throw Error("weights in '" + file.string() + "' do not fit " + bb->arch() + ": " + report.describe(),
                "use weights saved from the same architecture (torchvision names)");
  }
  log::infof("loaded {} weights for {} from {}{}", report.loaded, bb->arch(), file.string(),
             reinit_top ? " (classifier re-initialised for " + std::to_string(num_classes_) + " classes)" : "");
}

void NetworkImpl::set_backbone_trainable_blocks(int n, bool bn_inference) {
  auto bb = backbone();
  if (!bb) throw UsageError("this model has no backbone to freeze or fine-tune");
  bb->set_trainable_blocks(n, bn_inference);
}

size_t NetworkImpl::cacheable_prefix() const {
  if (!backbone_index_) return 0;
  for (size_t i = 0; i < *backbone_index_; ++i) {
    if (!entries_[i].layer->is_deterministic_when_frozen()) return 0;
  }
  auto bb = backbone();
  if (bb->count_parameters(/*trainable_only=*/true) > 0 || bb->include_top()) return 0;
  // Frozen units are held in inference mode by the backbone, so its output
  // is a fixed function of the image. Parameter-free fixed layers right after
  // it (global pooling, flatten) join the prefix: the cache then holds their
  // far smaller outputs (1,280 numbers an image for MobileNetV2, not 5x5x1,280).
  // At least one layer stays outside: the one that trains.
  size_t end = *backbone_index_ + 1;
  while (end + 1 < entries_.size() && !entries_[end].backbone && entries_[end].layer &&
         entries_[end].layer->is_deterministic_when_frozen()) {
    ++end;
  }
  return end;
}

TensorMap NetworkImpl::named_state() const {
  TensorMap out;
  for (const auto& e : entries_) {
    TensorMap part = e.backbone ? module_state(*e.backbone) : module_state(*e.layer, e.name + ".");
    out.insert(part.begin(), part.end());
  }
  return out;
}

LoadReport NetworkImpl::load_named_state(const TensorMap& state, bool strict) {
  // Split the file's tensors between the layers (by "<layer>." prefix) and the backbone (the rest).
  std::map<std::string, TensorMap> per_layer;
  TensorMap for_backbone;
  LoadReport total;
  for (const auto& [key, tensor] : state) {
    bool placed = false;
    for (const auto& e : entries_) {
      if (!e.backbone && starts_with_layer(key, e.name)) {
        per_layer[e.name].emplace(key, tensor);
        placed = true;
        break;
      }
    }
    if (!placed) {
      if (backbone_index_) {
        for_backbone.emplace(key, tensor);
      } else {
        total.unexpected.push_back(key);
      }
    }
  }
  // Check everything first so a strict failure copies nothing.
  std::vector<std::pair<const NetworkEntry*, LoadReport>> reports;
  auto merge = [&total](const LoadReport& r) {
    total.missing.insert(total.missing.end(), r.missing.begin(), r.missing.end());
    total.unexpected.insert(total.unexpected.end(), r.unexpected.begin(), r.unexpected.end());
    total.wrong_shape.insert(total.wrong_shape.end(), r.wrong_shape.begin(), r.wrong_shape.end());
    total.loaded += r.loaded;
  };
  if (strict) {
    // A dry run on copies would cost memory; instead compare names and shapes here.
    TensorMap mine = named_state();
    LoadReport check;
    for (const auto& [key, t] : mine) {
      auto it = state.find(key);
      if (it == state.end()) {
        if (!ends_with(key, "num_batches_tracked")) check.missing.push_back(key);
      } else if (it->second.sizes() != t.sizes()) {
        check.wrong_shape.push_back(key);
      }
    }
    for (const auto& [key, t] : state) {
      if (!mine.count(key)) check.unexpected.push_back(key);
    }
    if (!check.ok()) throw Error("the weights do not fit this model: " + check.describe());
  }
  for (const auto& e : entries_) {
    if (e.backbone) {
      merge(load_module_state(*e.backbone, for_backbone, false));
    } else {
      auto it = per_layer.find(e.name);
      TensorMap empty;
      merge(load_module_state(*e.layer, it == per_layer.end() ? empty : it->second, false, e.name + "."));
    }
  }
  return total;
}

int64_t NetworkImpl::count_trainable() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += e.backbone ? count_keras_params(*e.backbone).first : count_keras_params(*e.layer).first;
  return n;
}

int64_t NetworkImpl::count_non_trainable() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += e.backbone ? count_keras_params(*e.backbone).second : count_keras_params(*e.layer).second;
  return n;
}

}  // namespace tabby::nn
