// ViT-B/16 as torchvision builds it: "conv_proj" (16x16/16 patches to 768),
// a learned "class_token" in front of the 196 patch tokens,
// "encoder.pos_embedding" added, 12 pre-norm encoder layers
// "encoder.layers.encoder_layer_N" (ln_1 → self_attention, 12 heads, as
// nn.MultiheadAttention's in_proj_weight/in_proj_bias/out_proj; ln_2 → mlp.0
// Linear 3072, GELU, mlp.3 Linear 768), "encoder.ln", then "heads.head" on the
// class token. LayerNorm eps 1e-6. The position embedding fixes the input to
// 224x224.
//
// The feature map: the class token's embedding after encoder.ln, as a
// (B,768,1,1) map, which is what torchvision's head reads; tabby's heads
// (global pooling, Dense) then see exactly that vector.
#include "tabby/nn/zoo/archs.h"
#include "tabby/nn/zoo/layers.h"
#include "tabby/util/error.h"

#include <cmath>

namespace tabby::nn::zoo {

namespace {

constexpr double kVitNormEps = 1e-6;

struct VitVariant {
  int64_t image_size, patch_size, layers, heads, hidden, mlp;
};

// nn.MultiheadAttention(batch_first=True) used as self-attention, with its
// parameter names.
class SelfAttentionImpl : public torch::nn::Module {
 public:
  SelfAttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
    in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * dim, dim}));
    in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * dim}));
    out_proj = register_module("out_proj", torch::nn::Linear(dim, dim));
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(in_proj_weight);
    out_proj->bias.zero_();
  }

  // x is (B,S,D) → (B,S,D)
  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2), head_dim = dim / heads_;
    // (B,S,3D) → (3,B,heads,S,head_dim)
    torch::Tensor qkv = torch::linear(x, in_proj_weight, in_proj_bias)
                            .reshape({batch, tokens, 3, heads_, head_dim})
                            .permute({2, 0, 3, 1, 4});
    const torch::Tensor q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
    const torch::Tensor weights = torch::softmax(torch::matmul(q, qkv[1].transpose(-2, -1)), -1);
    const torch::Tensor mixed = torch::matmul(weights, qkv[2]).transpose(1, 2).reshape({batch, tokens, dim});
    return out_proj->forward(mixed);
  }

  Value export_onnx(GraphWriter& g, const Value& x) {
    const int64_t tokens = x.sample.size(1), dim = x.sample.size(2), head_dim = dim / heads_;
    torch::NoGradGuard no_grad;
    const torch::Tensor w_t = in_proj_weight.detach().t().contiguous();
    const Value projected = g.node("MatMul", {x.name, g.constant("attn.in_proj_t", w_t)}, {}, torch::matmul(x.sample, w_t));
    const torch::Tensor qkv_s = torch::linear(x.sample, in_proj_weight, in_proj_bias);
    const Value qkv = g.node("Add", {projected.name, g.constant("attn.in_proj_bias", in_proj_bias.detach())}, {}, qkv_s);
    const std::vector<int64_t> split_shape = {0, tokens, 3, heads_, head_dim};  // 0: keep the batch
    const torch::Tensor split_s = qkv_s.reshape({qkv_s.size(0), tokens, 3, heads_, head_dim});
    const Value split =
        g.node("Reshape", {qkv.name, g.constant("attn.split", torch::tensor(split_shape))}, {}, split_s);
    const std::vector<int64_t> order = {2, 0, 3, 1, 4};
    const torch::Tensor heads_s = split_s.permute(order);
    const Value heads = g.node("Transpose", {split.name}, {{"perm", order}}, heads_s);
    auto pick = [&](int64_t i, const char* hint) {
      return g.node("Gather", {heads.name, g.constant(hint, torch::tensor(i))}, {{"axis", int64_t{0}}}, heads_s[i]);
    };
    const Value q = pick(0, "attn.q"), k = pick(1, "attn.k"), v = pick(2, "attn.v");
    const std::vector<int64_t> swap_last = {0, 1, 3, 2};
    const Value k_t = g.node("Transpose", {k.name}, {{"perm", swap_last}}, k.sample.transpose(-2, -1));
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    const Value scores = g.node("MatMul", {q.name, k_t.name}, {}, torch::matmul(q.sample, k_t.sample));
    const Value scaled = g.node("Mul", {scores.name, g.constant("attn.scale", torch::tensor(scale))}, {},
                                scores.sample * scale);
    // Over the last axis; before opset 13 Softmax flattens from `axis` on, which for the last axis is the same.
    const Value weights = g.node("Softmax", {scaled.name}, {{"axis", int64_t{3}}}, torch::softmax(scaled.sample, -1));
    const Value mixed = g.node("MatMul", {weights.name, v.name}, {}, torch::matmul(weights.sample, v.sample));
    const std::vector<int64_t> back = {0, 2, 1, 3};
    const Value merged_heads = g.node("Transpose", {mixed.name}, {{"perm", back}}, mixed.sample.permute(back));
    const std::vector<int64_t> merged_shape = {0, tokens, dim};
    const Value merged =
        g.node("Reshape", {merged_heads.name, g.constant("attn.merge", torch::tensor(merged_shape))}, {},
               merged_heads.sample.reshape({merged_heads.sample.size(0), tokens, dim}));
    return export_linear_last_axis(g, *out_proj, merged);
  }

  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(SelfAttention);

class EncoderLayerImpl : public torch::nn::Module, public OnnxExportable {
 public:
  EncoderLayerImpl(const VitVariant& v) {
    ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({v.hidden}).eps(kVitNormEps)));
    self_attention = register_module("self_attention", SelfAttention(v.hidden, v.heads));
    ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({v.hidden}).eps(kVitNormEps)));
    // Indices as torchvision.ops.MLP's Sequential: 0 Linear, 1 GELU, 2 Dropout, 3 Linear, 4 Dropout.
    expand = torch::nn::Linear(v.hidden, v.mlp);
    project = torch::nn::Linear(v.mlp, v.hidden);
    mlp = register_module("mlp", torch::nn::Sequential(expand, torch::nn::GELU(), torch::nn::Dropout(0.0), project,
                                                       torch::nn::Dropout(0.0)));
    torch::NoGradGuard no_grad;
    for (auto* linear : {expand.get(), project.get()}) {
      torch::nn::init::xavier_uniform_(linear->weight);
      linear->bias.normal_(0.0, 1e-6);
    }
  }

  // x is (B,S,D) → (B,S,D)
  torch::Tensor forward(torch::Tensor x) {
    x = x + self_attention->forward(ln_1->forward(x));
    return x + mlp->forward(ln_2->forward(x));
  }

  Value export_onnx(GraphWriter& g, const Value& x) override {
    const Value attended = export_add(g, x, self_attention->export_onnx(g, export_module(g, *ln_1, x)));
    Value y = export_linear_last_axis(g, *expand, export_module(g, *ln_2, attended));
    y = export_linear_last_axis(g, *project, export_gelu(g, y));
    return export_add(g, attended, y);
  }

  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  SelfAttention self_attention{nullptr};
  torch::nn::Linear expand{nullptr}, project{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(EncoderLayer);

// torchvision's Encoder: the position embedding, the layers, the last LayerNorm.
class VitEncoderImpl : public torch::nn::Module {
 public:
  explicit VitEncoderImpl(const VitVariant& v) {
    const int64_t tokens = (v.image_size / v.patch_size) * (v.image_size / v.patch_size) + 1;
    pos_embedding = register_parameter("pos_embedding", torch::empty({1, tokens, v.hidden}));
    {
      torch::NoGradGuard no_grad;
      pos_embedding.normal_(0.0, 0.02);
    }
    for (int64_t i = 0; i < v.layers; ++i) layers->push_back("encoder_layer_" + std::to_string(i), EncoderLayer(v).ptr());
    register_module("layers", layers);
    ln = register_module("ln", torch::nn::LayerNorm(torch::nn::LayerNormOptions({v.hidden}).eps(kVitNormEps)));
  }

  torch::Tensor pos_embedding;
  torch::nn::Sequential layers;
  torch::nn::LayerNorm ln{nullptr};
};
TORCH_MODULE(VitEncoder);

class VisionTransformerImpl : public BackboneImpl {
 public:
  VisionTransformerImpl(const std::string& arch, const VitVariant& v, const BackboneOptions& o)
      : BackboneImpl(arch, o.include_top, o.num_classes), variant_(v) {
    conv_proj_ = register_module(
        "conv_proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, v.hidden, v.patch_size).stride(v.patch_size)));
    class_token_ = register_parameter("class_token", torch::zeros({1, 1, v.hidden}));
    encoder_ = register_module("encoder", VitEncoder(v));
    if (o.include_top) {
      heads_->push_back(std::string("head"), torch::nn::Linear(v.hidden, o.num_classes).ptr());
      register_module("heads", heads_);
    }
    torch::NoGradGuard no_grad;
    trunc_normal_(conv_proj_->weight, std::sqrt(1.0 / static_cast<double>(3 * v.patch_size * v.patch_size)));
    conv_proj_->bias.zero_();
    if (o.include_top) {
      // torchvision starts the head at zero.
      auto* head = heads_->ptr(0)->as<torch::nn::Linear>();
      head->weight.zero_();
      head->bias.zero_();
    }
  }

  // x is (B,3,224,224) → (B,768,1,1)
  torch::Tensor forward_features(torch::Tensor x) override {
    check_size(x.size(2), x.size(3));
    const int64_t batch = x.size(0);
    torch::Tensor tokens = conv_proj_->forward(x).flatten(2).transpose(1, 2);  // (B,196,768)
    tokens = torch::cat({class_token_.expand({batch, -1, -1}), tokens}, 1) + encoder_->pos_embedding;
    tokens = encoder_->ln->forward(encoder_->layers->forward(tokens));
    return tokens.select(1, 0).reshape({batch, -1, 1, 1});
  }

  torch::Tensor forward_top(torch::Tensor features) override {
    require_top();
    return heads_->forward(features.flatten(1));
  }

  // The class token joins a batch of any size: Expand to (B,1,768), B read
  // from the patch tokens' Shape.
  Value export_features(GraphWriter& g, const Value& x) override {
    torch::NoGradGuard no_grad;
    check_size(x.sample.size(2), x.sample.size(3));
    const Value patches = export_conv(g, *conv_proj_, x);
    const std::vector<int64_t> flat_shape = {0, variant_.hidden, -1};
    const torch::Tensor flat_s = patches.sample.flatten(2);
    const Value flat = g.node("Reshape", {patches.name, g.constant("vit.flatten", torch::tensor(flat_shape))}, {}, flat_s);
    const std::vector<int64_t> order = {0, 2, 1};
    const Value tokens = g.node("Transpose", {flat.name}, {{"perm", order}}, flat_s.permute(order));
    const torch::Tensor shape_s = torch::tensor(tokens.sample.sizes().vec());
    const Value shape = g.node("Shape", {tokens.name}, {}, shape_s);
    // [B, 196, 768] * [1, 0, 1] + [0, 1, 0] = [B, 1, 768]
    const torch::Tensor keep_s = shape_s * torch::tensor({1L, 0L, 1L});
    const Value keep = g.node("Mul", {shape.name, g.constant("vit.keep", torch::tensor({1L, 0L, 1L}))}, {}, keep_s);
    const torch::Tensor one_token_s = keep_s + torch::tensor({0L, 1L, 0L});
    const Value one_token = g.node("Add", {keep.name, g.constant("vit.one", torch::tensor({0L, 1L, 0L}))}, {}, one_token_s);
    const torch::Tensor cls_s = class_token_.expand({tokens.sample.size(0), -1, -1});
    const Value cls = g.node("Expand", {g.constant("vit.class_token", class_token_.detach()), one_token.name}, {}, cls_s);
    const torch::Tensor joined_s = torch::cat({cls_s, tokens.sample}, 1);
    const Value joined = g.node("Concat", {cls.name, tokens.name}, {{"axis", int64_t{1}}}, joined_s);
    Value y = g.node("Add", {joined.name, g.constant("vit.pos_embedding", encoder_->pos_embedding.detach())}, {},
                     joined_s + encoder_->pos_embedding);
    for (const auto& layer : encoder_->layers->children()) y = layer->as<EncoderLayer>()->export_onnx(g, y);
    y = export_module(g, *encoder_->ln, y);
    const torch::Tensor first_s = y.sample.select(1, 0);
    const Value first = g.node("Gather", {y.name, g.constant("vit.first", torch::tensor(0L))}, {{"axis", int64_t{1}}}, first_s);
    const std::vector<int64_t> map_shape = {0, variant_.hidden, 1, 1};
    return g.node("Reshape", {first.name, g.constant("vit.map", torch::tensor(map_shape))}, {},
                  first_s.reshape({first_s.size(0), -1, 1, 1}));
  }

  Value export_top(GraphWriter& g, const Value& features) override {
    require_top();
    return export_linear(g, *heads_->ptr(0)->as<torch::nn::Linear>(), export_flatten(g, features));
  }

  int64_t feature_channels() const override { return variant_.hidden; }

  // The patch embedding (three units: conv_proj, class_token, the position
  // embedding), each encoder layer, the final LayerNorm; then the head.
  std::vector<std::string> blocks() const override {
    std::vector<std::string> units = {"conv_proj", "class_token", "encoder.pos_embedding"};
    for (int64_t i = 0; i < variant_.layers; ++i) units.push_back("encoder.layers.encoder_layer_" + std::to_string(i));
    units.push_back("encoder.ln");
    if (include_top()) units.push_back("heads.head");
    return units;
  }

  std::vector<std::string> top_prefixes() const override { return {"heads"}; }

  // torchvision before 0.13 named the MLP's Linears mlp.linear_1 / mlp.linear_2
  // (the IMAGENET1K_V1 file still does); today they are mlp.0 / mlp.3.
  void upgrade_state_names(TensorMap& state) const override {
    for (auto it = state.begin(); it != state.end();) {
      const std::string& name = it->first;
      const size_t at = name.find(".mlp.linear_");
      if (at == std::string::npos || name.size() < at + 13) {
        ++it;
        continue;
      }
      const char which = name[at + 12];
      const std::string renamed =
          name.substr(0, at) + ".mlp." + (which == '1' ? "0" : "3") + name.substr(at + 13);
      torch::Tensor tensor = it->second;
      it = state.erase(it);
      state.emplace(renamed, tensor);
    }
  }

 private:
  void check_size(int64_t height, int64_t width) const {
    if (height != variant_.image_size || width != variant_.image_size) {
      throw UsageError(arch() + " takes " + std::to_string(variant_.image_size) + "x" +
                           std::to_string(variant_.image_size) + " images only, got " + std::to_string(height) +
                           "x" + std::to_string(width),
                       "use --image-size " + std::to_string(variant_.image_size));
    }
  }

  VitVariant variant_;
  torch::nn::Conv2d conv_proj_{nullptr};
  torch::Tensor class_token_;
  VitEncoder encoder_{nullptr};
  torch::nn::Sequential heads_;
};

}  // namespace

std::vector<ArchStructure> vision_transformer_structures() {
  return {{"vit_b_16", [](const BackboneOptions& o) -> Backbone {
             return std::make_shared<VisionTransformerImpl>("vit_b_16", VitVariant{224, 16, 12, 12, 768, 3072}, o);
           }}};
}

}  // namespace tabby::nn::zoo
