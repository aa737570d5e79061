#include "tabby/distributed/replica_sync.h"

#include <map>

#include "tabby/weights/sha256.h"

namespace tabby {

namespace {

bool is_batch_norm(const torch::nn::Module& m) {
  return m.as<torch::nn::BatchNorm2d>() != nullptr || m.as<torch::nn::BatchNorm1d>() != nullptr;
}

// Broadcasts `tensors` from rank 0 flattened into one tensor per element type.
void broadcast_flat(std::vector<torch::Tensor>& tensors, Collective& group) {
  torch::NoGradGuard no_grad;
  std::map<c10::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i) by_type[tensors[i].scalar_type()].push_back(i);
  for (const auto& [type, members] : by_type) {
    std::vector<torch::Tensor> parts;
    for (size_t i : members) parts.push_back(tensors[i].reshape(-1));
    std::vector<torch::Tensor> flat = {torch::cat(parts)};
    group.broadcast(flat, 0);
    int64_t at = 0;
    for (size_t i : members) {
      const int64_t n = tensors[i].numel();
      torch::NoGradGuard no_grad;
      tensors[i].copy_(flat[0].narrow(0, at, n).view(tensors[i].sizes()));
      at += n;
    }
  }
}

}  // namespace

void broadcast_model(nn::NetworkImpl& net, Collective& group) {
  std::vector<torch::Tensor> all;
  for (auto& p : net.parameters(true)) all.push_back(p);
  for (auto& b : net.buffers(true)) all.push_back(b);
  broadcast_flat(all, group);
}

BufferSync::BufferSync(nn::NetworkImpl& net, size_t first_layer) {
  const auto& entries = net.entries();
  for (size_t i = first_layer; i < entries.size(); ++i) {
    std::shared_ptr<torch::nn::Module> root;
    if (entries[i].backbone) {
      root = entries[i].backbone;
    } else {
      root = entries[i].layer;
    }
    if (!root) continue;
    for (const auto& m : root->modules(/*include_self=*/true)) {
      if (!is_batch_norm(*m) || !m->is_training()) continue;
      for (auto& b : m->buffers(/*recurse=*/false)) buffers_.push_back(b);
    }
  }
}

void BufferSync::broadcast(Collective& group) {
  if (!buffers_.empty()) broadcast_flat(buffers_, group);
}

GradientSync::GradientSync(std::vector<torch::Tensor> params, int64_t bucket_bytes) : params_(std::move(params)) {
  int64_t filled = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const int64_t bytes = params_[i].numel() * static_cast<int64_t>(params_[i].element_size());
    const bool same_type = !buckets_.empty() && params_[buckets_.back().front()].scalar_type() == params_[i].scalar_type();
    if (buckets_.empty() || !same_type || filled + bytes > bucket_bytes) {
      buckets_.emplace_back();
      filled = 0;
    }
    buckets_.back().push_back(i);
    filled += bytes;
  }
}

void GradientSync::sum(Collective& group, torch::Tensor& stats) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  for (const auto& bucket : buckets_) {
    std::vector<torch::Tensor> parts;
    for (size_t i : bucket) {
      const auto& p = params_[i];
      parts.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options()));
    }
    flat.push_back(torch::cat(parts));
  }
  flat.push_back(stats);
  group.allreduce_sum(flat);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    int64_t at = 0;
    for (size_t i : buckets_[b]) {
      auto& p = params_[i];
      const auto summed = flat[b].narrow(0, at, p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(summed);
      } else {
        p.mutable_grad() = summed.clone();
      }
      at += p.numel();
    }
  }
  if (!flat.back().is_same(stats)) stats.copy_(flat.back());
}

std::string model_digest(const nn::NetworkImpl& net) {
  Sha256 hash;
  for (const auto& [name, tensor] : net.named_state()) {
    const auto bytes = tensor.detach().to(torch::kCPU).contiguous();
    hash.update(name);
    hash.update(std::string_view(static_cast<const char*>(bytes.data_ptr()), bytes.nbytes()));
  }
  return hash.hex_digest();
}

}  // namespace tabby
