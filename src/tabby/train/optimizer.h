// Optimisers by name (adam, adamw, sgd) over the parameters that require
// gradients, with Keras' defaults where they differ from PyTorch's (Adam
// epsilon 1e-7), and learning-rate access for schedules. State (moments,
// step counts) serialises to bytes for checkpoints.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "tabby/config/train_options.h"

namespace tabby {

// Parameters that train at `lr_ratio` times the run's learning rate
// (discriminative learning rates: train/param_groups.h).
struct ParamGroup {
  std::vector<torch::Tensor> params;
  double lr_ratio = 1.0;
};

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& options, double lr,
                                                        const std::vector<ParamGroup>& groups);
// All parameters in one group.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& options, double lr,
                                                        const std::vector<torch::Tensor>& params);

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);
// Group i trains at lr * ratios[i].
void set_learning_rates(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& ratios);
double learning_rate(const torch::optim::Optimizer& optimizer);

std::string save_optimizer_state(torch::optim::Optimizer& optimizer);
void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& bytes);

}  // namespace tabby
