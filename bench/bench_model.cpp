// Model-only ceiling: the speed of a tabby model on synthetic batches already
// in memory, with no decoding, no loader and no validation. What end-to-end
// training (or prediction) could reach if the input pipeline cost nothing.
//   train  train mode (augmentation layers and dropout active), forward, loss,
//          loss.item(), backward, Adam step, accuracy tally — one step of fit()
//   infer  eval mode, no gradients, forward + probabilities — one batch of
//          `tabby predict`
// Usage: bench_model MODEL [--size N] [--batch B] [--steps S] [--mode train|infer]
//        [--freeze] [--pretrained] [--classes C] [--threads T] [--channels-last on|off]
//        [--device cpu|cuda[:N]] [--precision auto|fp32|bf16]
// MODEL is a preset or model file, as `tabby train --model`; --freeze freezes
// the backbone like `tabby train --freeze-backbone`. Weights stay freshly
// initialised unless --pretrained loads the backbone's (ImageNet) weights as
// `tabby train` does: a frozen, randomly initialised backbone can drift into
// denormal activations, which are slow on CPUs. Channels-last is on
// by default, as `tabby train --channels-last auto` and `tabby predict` use it.
// --device cuda puts the model and the synthetic batch on the GPU (cuDNN's
// autotuner on, as `tabby train` sets it) and synchronizes the device before
// every clock reading; --precision runs the forward pass under the trainer's
// autocast (auto: bf16 on CUDA, fp32 on the CPU), the loss in fp32 as fit()
// computes it. On CUDA a train step reads nothing back (fit() reads its step
// metrics in groups there); step_seconds synchronize after every step, and
// images_per_s comes from the same number of steps run again back to back with
// one synchronize at the end, as fit() runs them ("timing" in the JSON says so;
// "synced_images_per_s" is the rate of the synchronized steps).
// The defaults (cpu, auto = fp32) are the CPU ceiling as before:
// same work, same JSON; "device" and "precision" join the JSON only when they
// differ from them.
// Prints one JSON object.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tabby/api/train_job.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/train_options.h"
#include "tabby/nn/network.h"
#include "tabby/inference/device.h"
#include "tabby/train/optimizer.h"
#include "tabby/inference/precision.h"
#include "tabby/util/enum_names.h"
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
  std::string device = "cpu";
  std::string precision = "auto";
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
    else if (k == "--device") a.device = v;
    else if (k == "--precision") a.precision = v;
    else throw tabby::UsageError("unknown flag " + k);
  }
  if (a.mode != "train" && a.mode != "infer") throw tabby::UsageError("--mode is train or infer");
  if (a.precision == "fp16") {
    throw tabby::UsageError("--precision fp16 is not measured by bench_model (it needs the trainer's loss scaling)",
                            "use auto, fp32 or bf16");
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_model MODEL [--size N] [--batch B] [--steps S] [--mode train|infer] "
                         "[--freeze] [--pretrained] [--classes C] [--threads T] [--channels-last on|off] "
                         "[--device cpu|cuda[:N]] [--precision auto|fp32|bf16]\n");
    return 2;
  }
  try {
    const Args a = parse(argc, argv);
    const int threads = tabby::configure_threads(a.threads);
    const torch::Device device = tabby::resolve_device(a.device);  // cuda: also turns cuDNN's autotuner on
    const auto choice = tabby::enum_from_name<tabby::PrecisionChoice>(a.precision);
    if (!choice) throw tabby::UsageError("--precision " + a.precision + ": use auto, fp32 or bf16");
    const tabby::Precision precision = tabby::resolve_precision(*choice, device);
    const bool cuda = device.is_cuda();
    // Device work is asynchronous: wait for it before reading the clock.
    auto sync = [cuda, &device] {
      if (cuda) torch::cuda::synchronize(device.index());
    };
    tabby::ModelSpec spec = tabby::resolve_model(a.model);
    if (a.freeze) {
      auto idx = spec.backbone_index();
      if (!idx) throw tabby::UsageError("--freeze needs a model with a backbone");
      spec.layers[*idx].params["trainable"] = false;
    }
    torch::manual_seed(1);
    tabby::nn::Network net(spec, a.classes, a.size, a.size);
    if (a.pretrained) net->load_pretrained_weights();
    if (cuda) net->to(device);  // as fit() does, before the layout change
    net->set_channels_last(a.channels_last);

    // x is (B,3,H,W) float pixels in [0,255], as the loader delivers them
    // (on the GPU: already there, as the trainer's GPU image cache gives them).
    torch::Tensor x, labels;
    if (cuda) {
      x = torch::rand({a.batch, 3, a.size, a.size}, torch::TensorOptions().device(device)) * 255;
      labels = torch::randint(0, a.classes, {a.batch}, torch::TensorOptions().dtype(torch::kInt64).device(device));
    } else {
      x = torch::rand({a.batch, 3, a.size, a.size}) * 255;
      labels = torch::randint(0, a.classes, {a.batch}, torch::kInt64);
    }

    std::function<void()> step;
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    torch::Tensor loss_sum, correct_sum;  // CUDA: the step metrics, on the device
    if (a.mode == "train") {
      net->train();
      std::vector<torch::Tensor> params;
      for (auto& p : net->parameters()) {
        if (p.requires_grad()) params.push_back(p);
      }
      tabby::TrainOptions options;  // Adam, Keras' epsilon, as fit() uses by default
      optimizer = tabby::make_optimizer(options, 1e-3, params);
      step = [&] {
        torch::Tensor logits;
        {
          tabby::AutocastScope autocast(precision, device);  // nothing for fp32
          logits = net->forward(x);
        }
        if (precision != tabby::Precision::fp32) logits = logits.to(torch::kFloat32);  // fit()'s fp32 loss
        auto loss = net->loss(logits, labels);
        if (!cuda) (void)loss.item<double>();
        optimizer->zero_grad();
        loss.backward();
        optimizer->step();
        auto correct = net->predicted_classes(logits.detach()).eq(labels).sum();  // fit()'s accuracy tally
        if (cuda) {
          // fit() on CUDA keeps the step metrics on the device and reads them in
          // groups: no host read (and no wait) per step.
          loss_sum = loss_sum.defined() ? loss_sum + loss.detach() : loss.detach();
          correct_sum = correct_sum.defined() ? correct_sum + correct : correct;
        } else {
          (void)correct.item<double>();
        }
      };
    } else {
      net->eval();
      step = [&] {
        torch::NoGradGuard no_grad;
        torch::Tensor logits;
        {
          tabby::AutocastScope autocast(precision, device);
          logits = net->forward(x);
        }
        if (precision != tabby::Precision::fp32) logits = logits.to(torch::kFloat32);
        auto probs = net->probabilities(logits);
        (void)probs[0][0].item<float>();
      };
    }

    // Two warm-up steps (oneDNN primitive creation, allocator growth; on CUDA
    // also cuDNN's algorithm search and the caching allocator's first blocks).
    for (int i = 0; i < 2; ++i) step();
    sync();
    std::vector<double> times;
    auto t_all = Clock::now();
    for (int i = 0; i < a.steps; ++i) {
      auto t0 = Clock::now();
      step();
      sync();
      times.push_back(seconds_since(t0));
    }
    double total = seconds_since(t_all);
    if (cuda) {
      // Throughput as fit() runs the steps: back to back, the host queueing the
      // next while the GPU works, one wait at the end (the per-step waits above
      // give the step times). images_per_s is this figure on CUDA.
      auto t_run = Clock::now();
      for (int i = 0; i < a.steps; ++i) step();
      if (loss_sum.defined()) (void)loss_sum.item<double>();
      sync();
      total = seconds_since(t_run);
    }
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
    std::string where;  // empty on the default path, whose output stays as it was
    if (!device.is_cpu() || precision != tabby::Precision::fp32) {
      out["device"] = device.str();
      out["precision"] = tabby::precision_name(precision);
      where = " on " + device.str() + " " + tabby::precision_name(precision);
    }
    if (cuda) {
      out["timing"] = "step_seconds: each step followed by a device synchronize; images_per_s: the same number "
                      "of steps again back to back, one synchronize at the end";
      out["synced_images_per_s"] = a.batch * a.steps / std::accumulate(times.begin(), times.end(), 0.0);
    }
    std::fprintf(stderr, "bench_model %s %s %lldpx batch %lld%s: %.0f ms/step, %.1f images/s\n", a.model.c_str(),
                 a.mode.c_str(), static_cast<long long>(a.size), static_cast<long long>(a.batch), where.c_str(),
                 median * 1000, a.batch * a.steps / total);
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
