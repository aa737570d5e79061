// Model-only ceiling: the speed of a tabby model on synthetic batches already
// in memory, with no decoding, no loader and no validation. What end-to-end
// training (or prediction) could reach if the input pipeline cost nothing.
//   train  train mode (augmentation layers and dropout active), forward, loss,
//          loss.item(), backward, Adam step, accuracy tally — one step of fit()
//   infer  eval mode, no gradients, forward + probabilities — one batch of
//          `tabby predict`
// Usage: bench_model MODEL [--size N] [--batch B] [--steps S] [--mode train|infer]
//        [--freeze] [--pretrained] [--classes C] [--threads T] [--channels-last on|off]
// MODEL is a preset or model file, as `tabby train --model`; --freeze freezes
// the backbone like `tabby train --freeze-backbone`. Weights stay freshly
// initialised unless --pretrained loads the backbone's (ImageNet) weights as
// `tabby train` does: a frozen, randomly initialised backbone can drift into
// denormal activations, which are slow on CPUs. Channels-last is on
// by default, as `tabby train --channels-last auto` and `tabby predict` use it.
// Prints one JSON object.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tabby/api/train_job.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/train_options.h"
#include "tabby/nn/network.h"
#include "tabby/train/optimizer.h"
#include "tabby/util/error.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Args {
  std::string model;
  int64_t size = 150, batch = 32, classes = 2;
  int steps = 10, threads = 0;
  std::string mode = "train";
  bool freeze = false;
  bool pretrained = false;
  bool channels_last = true;
};

Args parse(int argc, char** argv) {
  Args a;
  a.model = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--freeze" || k == "--pretrained") {
      (k == "--freeze" ? a.freeze : a.pretrained) = true;
      continue;
    }
    if (i + 1 >= argc) throw tabby::UsageError("flag " + k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--size") a.size = std::stoll(v);
    else if (k == "--batch") a.batch = std::stoll(v);
    else if (k == "--steps") a.steps = std::max(1, std::stoi(v));
    else if (k == "--mode") a.mode = v;
    else if (k == "--classes") a.classes = std::stoll(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--channels-last") a.channels_last = v != "off";
    else throw tabby::UsageError("unknown flag " + k);
  }
  if (a.mode != "train" && a.mode != "infer") throw tabby::UsageError("--mode is train or infer");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model MODEL [--size N] [--batch B] [--steps S] [--mode train|infer] "
                         "[--freeze] [--pretrained] [--classes C] [--threads T] [--channels-last on|off]\n");
    return 2;
  }
  try {
    const Args a = parse(argc, argv);
    const int threads = tabby::configure_threads(a.threads);
    tabby::ModelSpec spec = tabby::resolve_model(a.model);
    if (a.freeze) {
      auto idx = spec.backbone_index();
      if (!idx) throw tabby::UsageError("--freeze needs a model with a backbone");
      spec.layers[*idx].params["trainable"] = false;
    }
    torch::manual_seed(1);
    tabby::nn::Network net(spec, a.classes, a.size, a.size);
    if (a.pretrained) net->load_pretrained_weights();
    net->set_channels_last(a.channels_last);

    // x is (B,3,H,W) float pixels in [0,255], as the loader delivers them.
    auto x = torch::rand({a.batch, 3, a.size, a.size}) * 255;
    auto labels = torch::randint(0, a.classes, {a.batch}, torch::kInt64);

    std::function<void()> step;
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (a.mode == "train") {
      net->train();
      std::vector<torch::Tensor> params;
      for (auto& p : net->parameters()) {
        if (p.requires_grad()) params.push_back(p);
      }
      tabby::TrainOptions options;  // Adam, Keras' epsilon, as fit() uses by default
      optimizer = tabby::make_optimizer(options, 1e-3, params);
      step = [&] {
        auto logits = net->forward(x);
        auto loss = net->loss(logits, labels);
        (void)loss.item<double>();
        optimizer->zero_grad();
        loss.backward();
        optimizer->step();
        (void)net->predicted_classes(logits.detach()).eq(labels).sum().item<double>();  // fit()'s accuracy tally
      };
    } else {
      net->eval();
      step = [&] {
        torch::NoGradGuard no_grad;
        auto probs = net->probabilities(net->forward(x));
        (void)probs[0][0].item<float>();
      };
    }

    // Two warm-up steps (oneDNN primitive creation, allocator growth).
    for (int i = 0; i < 2; ++i) step();
    std::vector<double> times;
    auto t_all = Clock::now();
    for (int i = 0; i < a.steps; ++i) {
      auto t0 = Clock::now();
      step();
      times.push_back(seconds_since(t0));
    }
    const double total = seconds_since(t_all);
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted[sorted.size() / 2];
    nlohmann::json out = {{"model", a.model},
                          {"mode", a.mode},
                          {"size", a.size},
                          {"batch", a.batch},
                          {"steps", a.steps},
                          {"threads", threads},
                          {"freeze", a.freeze},
                          {"pretrained", a.pretrained},
                          {"channels_last", a.channels_last},
                          {"trainable_params", net->count_trainable()},
                          {"step_seconds", times},
                          {"median_step_seconds", median},
                          {"images_per_s", a.batch * a.steps / total},
                          {"median_images_per_s", a.batch / median}};
    std::fprintf(stderr, "bench_model %s %s %lldpx batch %lld: %.0f ms/step, %.1f images/s\n", a.model.c_str(),
                 a.mode.c_str(), static_cast<long long>(a.size), static_cast<long long>(a.batch), median * 1000,
                 a.batch * a.steps / total);
    std::printf("%s\n", out.dump().c_str());
  } catch (const tabby::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
