// model.summary(): a Keras-style table of layers, output shapes and parameter
// counts, with total / trainable / non-trainable totals.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "tabby/nn/network.h"

namespace tabby::nn {

struct SummaryRow {
  std::string name;
  std::string type;           // "Conv2D", "Functional" for a backbone (as Keras shows it)
  std::vector<int64_t> shape;  // without batch, NCHW order internally
  int64_t params = 0;          // trainable + non-trainable
  int64_t trainable = 0;
};

struct ModelSummary {
  std::string model_name;
  std::vector<SummaryRow> rows;
  int64_t total = 0, trainable = 0, non_trainable = 0;
  std::string output;  // "softmax over 2 classes", "sigmoid (binary)"
};

ModelSummary summarize(const NetworkImpl& net);
// Box-drawn table like Keras 3's, shapes as (None, H, W, C).
std::string format_summary(const ModelSummary& summary);
nlohmann::json summary_to_json(const ModelSummary& summary);
// "(None, 148, 148, 32)" for {32,148,148}; "(None, 128)" for {128}.
std::string keras_shape(const std::vector<int64_t>& shape);
// "18.42 MB" for float32 parameters.
std::string param_bytes_text(int64_t params);

}  // namespace tabby::nn
