// RegNetY-400MF as torchvision builds it: "stem" (3x3/2 conv, batch norm,
// ReLU), then "trunk_output.blockS" stages of residual bottleneck blocks
// "blockS-N" (f.a 1x1 → f.b 3x3 grouped, group width 8 → f.se
// squeeze-excitation → f.c 1x1; "proj" 1x1 conv + batch norm on the shortcut
// where the shape changes; ReLU after the sum), global average, "fc".
// The stage table is what torchvision's BlockParams.from_init_params computes
// for regnet_y_400mf (depth 16, w_0 48, w_a 27.89, w_m 2.09, group width 8,
// SE ratio 0.25).
//
// Why 400MF rather than 800MF: it is the smallest RegNetY (4.3M parameters,
// 0.4 GFLOPs at 224), a drop-in for MobileNet-sized CPU training, and its
// tests cost the least; 800MF differs only in its stage table.
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"

#include <cmath>

namespace tabby::nn::zoo {

namespace {

struct RegNetStage {
  int64_t width, depth;
};

struct RegNetVariant {
  std::vector<RegNetStage> stages;
  int64_t group_width;
  double se_ratio;
  int64_t stem_width = 32;
};

class ResBottleneckImpl : public torch::nn::Module, public OnnxExportable {
 public:
  ResBottleneckImpl(int64_t in, int64_t out, int64_t stride, int64_t group_width, double se_ratio) {
    const NormSettings norm;
    if (in != out || stride != 1) {
      proj_ = register_module("proj", conv_norm_activation(in, out, 1, stride, 1, Activation::None, norm));
    }
    const int64_t groups = out / group_width;
    f_->push_back(std::string("a"), conv_norm_activation(in, out, 1, 1, 1, Activation::ReLU, norm).ptr());
    f_->push_back(std::string("b"), conv_norm_activation(out, out, 3, stride, groups, Activation::ReLU, norm).ptr());
    f_->push_back(std::string("se"),
                  SqueezeExcitation(out, static_cast<int64_t>(std::round(se_ratio * static_cast<double>(in))),
                                    Activation::ReLU, Gate::Sigmoid)
                      .ptr());
    f_->push_back(std::string("c"), conv_norm_activation(out, out, 1, 1, 1, Activation::None, norm).ptr());
    register_module("f", f_);
  }

  // x is (B,in,H,W) → (B,out,H/stride,W/stride)
  torch::Tensor forward(torch::Tensor x) {
    torch::Tensor shortcut = proj_ ? proj_->forward(x) : x;
    return relu_fresh(add_into_fresh(f_->forward(x), shortcut));
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value shortcut = proj_ ? export_module(g, *proj_, x) : x;
    return export_relu(g, export_add(g, export_module(g, *f_, x), shortcut));
  }

 private:
  Chain proj_{nullptr};
  Chain f_;
};
TORCH_MODULE(ResBottleneck);

class RegNetImpl : public BackboneImpl {
 public:
  RegNetImpl(const std::string& arch, const RegNetVariant& v, const BackboneOptions& o)
      : BackboneImpl(arch, o.include_top, o.num_classes) {
    stem_ = register_module("stem", conv_norm_activation(3, v.stem_width, 3, 2, 1, Activation::ReLU, NormSettings{}));
    int64_t width = v.stem_width;
    for (size_t s = 0; s < v.stages.size(); ++s) {
      const std::string stage_name = "block" + std::to_string(s + 1);
      Chain stage;
      for (int64_t i = 0; i < v.stages[s].depth; ++i) {
        stage->push_back(stage_name + "-" + std::to_string(i),
                         ResBottleneck(i == 0 ? width : v.stages[s].width, v.stages[s].width, i == 0 ? 2 : 1,
                                       v.group_width, v.se_ratio)
                             .ptr());
        block_names_.push_back("trunk_output." + stage_name + "." + stage_name + "-" + std::to_string(i));
      }
      trunk_->push_back(std::string(stage_name), stage.ptr());
      width = v.stages[s].width;
    }
    register_module("trunk_output", trunk_);
    feature_channels_ = width;
    if (o.include_top) fc_ = register_module("fc", torch::nn::Linear(width, o.num_classes));
    init_torchvision_style(*this, /*linear_std=*/0.01);
    // torchvision re-initialises only conv weights: the squeeze-excitation
    // convs keep PyTorch's default uniform bias.
    torch::NoGradGuard no_grad;
    for (const auto& m : modules(/*include_self=*/false)) {
      if (auto* se = m->as<SqueezeExcitation>()) {
        for (auto* conv : {se->fc1.get(), se->fc2.get()}) {
          const double bound = 1.0 / std::sqrt(static_cast<double>(conv->weight.size(1)));
          conv->bias.uniform_(-bound, bound);
        }
      }
    }
  }

  // x is (B,3,H,W) → (B,440,H/32,W/32)
  torch::Tensor forward_features(torch::Tensor x) override { return trunk_->forward(stem_->forward(x)); }

  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return fc_->forward(torch::adaptive_avg_pool2d(features, {1, 1}).flatten(1));
  }

  Value export_features(GraphWriter& g, const Value& x) override {
    return export_module(g, *trunk_, export_module(g, *stem_, x));
  }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_linear(g, *fc_, export_flatten(g, export_global_average_pool(g, features)));
  }

  int64_t feature_channels() const override { return feature_channels_; }

  // The stem, each residual block; then fc.
  std::vector<std::string> blocks() const override {
    std::vector<std::string> units = {"stem"};
    units.insert(units.end(), block_names_.begin(), block_names_.end());
    if (include_top()) units.push_back("fc");
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"fc"}; }

 private:
  Chain stem_{nullptr};
  Chain trunk_;
  torch::nn::Linear fc_{nullptr};
  std::vector<std::string> block_names_;
  int64_t feature_channels_ = 0;
};

}  // namespace

std::vector<ArchStructure> regnet_structures() {
  return {{"regnet_y_400mf", [](const BackboneOptions& o) -> Backbone {
             return std::make_shared<RegNetImpl>(
                 "regnet_y_400mf", RegNetVariant{{{48, 1}, {104, 3}, {208, 6}, {440, 6}}, 8, 0.25}, o);
           }}};
}

}  // namespace tabby::nn::zoo
