// Each rank of a data-parallel job does its share of the one-off work and
// then holds what a single process would have: the decoded images (each rank
// decodes a contiguous share of the files) and the frozen backbone's features
// (each rank computes them for its share of the images), gathered in rank
// order, so rows, labels and order match a single-process run exactly.
// Validation is split the same way and its metrics summed over the ranks.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "tabby/dataset/dataset.h"
#include "tabby/distributed/collective.h"
#include "tabby/nn/network.h"
#include "tabby/pipeline/image_cache.h"
#include "tabby/inference/evaluate.h"

namespace tabby {

// Rows [begin, end) of n that `rank` of `world` takes: contiguous, in rank
// order, sizes differing by at most one.
struct RowRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
RowRange shard_rows(int64_t n, int rank, int world);

// Every rank decodes its share of `dataset` and all end with the whole cache
// (skipped files named by every rank's share). tabby::Error when no file of
// the dataset could be decoded.
ImageCache build_image_cache_sharded(const Dataset& dataset, const ImageCacheOptions& options, Collective& group);

// compute_prefix_outputs (train/evaluate.h) with each rank computing its share
// of the rows; every rank gets every row's outputs, on `device`.
torch::Tensor compute_prefix_outputs_sharded(nn::NetworkImpl& net, const RowSource& images, size_t prefix,
                                             const torch::Device& device, int64_t batch_size, const std::string& what,
                                             Collective& group);

// The metrics of every rank's evaluation of its share together: loss and
// accuracy over all images, counts summed. Outputs are not gathered. A rank
// whose share was empty has no predicted counts: `num_classes` sizes them.
EvalResult sum_evaluations(const EvalResult& local, int64_t num_classes, Collective& group);

}  // namespace tabby
