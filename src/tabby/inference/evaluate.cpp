#include "tabby/inference/evaluate.h"

#include <algorithm>

#include "tabby/pipeline/cache_policy.h"
#include "tabby/pipeline/rows_file.h"
#include "tabby/util/log.h"
#include "tabby/util/progress.h"

namespace tabby {

torch::Tensor per_sample_loss(bool binary_output, const torch::Tensor& logits, const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  if (binary_output) {
    return F::binary_cross_entropy_with_logits(logits.view({-1}), labels.to(logits.dtype()),
                                               F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  }
  return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().reduction(torch::kNone));
}


EvalResult evaluate_network(nn::NetworkImpl& net, BatchLoader& loader, size_t first_layer, bool keep_outputs,
                            Precision precision, Tta tta) {
  torch::NoGradGuard no_grad;
  net.eval();
  EvalResult r;
  std::vector<torch::Tensor> probs, labels, losses, indices;
  torch::Tensor loss_sum, correct_sum, predicted_sum;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    torch::Tensor logits;
    {
      AutocastScope autocast(precision, batch->inputs.device());
      logits = forward_with_tta(net, batch->inputs, first_layer, tta);
    }
    logits = logits.to(torch::kFloat32);
    auto per_sample = per_sample_loss(net.output().binary(), logits, batch->labels);
    const auto predicted = net.predicted_classes(logits);
    auto correct = predicted.eq(batch->labels).sum();
    // Binary heads have one logit but two classes.
    const int64_t classes = std::max<int64_t>(2, logits.dim() == 2 ? logits.size(1) : 1);
    auto per_class = torch::bincount(predicted, {}, classes);
    predicted_sum = predicted_sum.defined() ? predicted_sum + per_class : per_class;
    const auto batch_loss = per_sample.sum().to(torch::kFloat64);
    loss_sum = loss_sum.defined() ? loss_sum + batch_loss : batch_loss;
    correct_sum = correct_sum.defined() ? correct_sum + correct : correct;
    r.count += batch->labels.size(0);
    if (keep_outputs) {
      probs.push_back(net.probabilities(logits).to(torch::kCPU, torch::kFloat32));
      labels.push_back(batch->labels.to(torch::kCPU));
      losses.push_back(per_sample.to(torch::kCPU, torch::kFloat32));
      indices.push_back(batch->indices);
    }
  }
  if (r.count > 0) {
    r.loss = loss_sum.item<double>() / static_cast<double>(r.count);
    r.accuracy = correct_sum.item<double>() / static_cast<double>(r.count);
    const auto counts = predicted_sum.to(torch::kCPU, torch::kInt64).contiguous();
    r.predicted_counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
  }
  if (keep_outputs && !probs.empty()) {
    r.probabilities = torch::cat(probs);
    r.labels = torch::cat(labels);
    r.losses = torch::cat(losses);
    r.indices = torch::cat(indices);
  }
  return r;
}

torch::Tensor compute_prefix_outputs(nn::NetworkImpl& net, const RowSource& images, size_t prefix,
                                     const torch::Device& device, int64_t batch_size, const std::string& what) {
  torch::NoGradGuard no_grad;
  net.eval();
  const int64_t n = images.size();
  BatchLoader loader(images, torch::zeros({n}, torch::kLong), LoaderOptions::in_order(batch_size, device));
  ProgressLine progress("features for " + what, loader.num_batches(), "batch");
  // Rows are written in place as batches come: one copy of the features, no
  // concatenation. Large ones (a big dataset) live in a deleted file under the
  // cache folder: page cache, not private memory.
  torch::Tensor out;
  int64_t row = 0, step = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    torch::Tensor part = net.forward_range(batch->inputs, 0, prefix);
    if (!out.defined()) {
      std::vector<int64_t> sizes = part.sizes().vec();
      sizes[0] = n;
      const uint64_t bytes = static_cast<uint64_t>(part[0].numel()) * part.element_size() * static_cast<uint64_t>(n);
      if (part.device().is_cpu() && bytes > largest_in_memory_features_bytes()) {
        out = file_backed_tensor(default_data_cache_policy().folder(), sizes, part.scalar_type());
        log::infof("the features of the {} ({:.2f} GB) are kept in a file under {} (page cache, not private memory)",
                   what, bytes / 1e9, default_data_cache_policy().folder().string());
      } else {
        out = torch::empty(sizes, part.options());
      }
    }
    out.narrow(0, row, part.size(0)).copy_(part);
    row += part.size(0);
    progress.update(++step);
  }
  progress.finish();
  return out;
}

}  // namespace tabby
