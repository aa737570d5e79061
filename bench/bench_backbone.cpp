// Inference speed of a zoo backbone on random input: images/s for NCHW and
// channels-last layouts. Usage: bench_backbone [arch] [size] [batch] [threads]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "tabby/nn/zoo/backbone.h"

int main(int argc, char** argv) {
  const std::string arch = argc > 1 ? argv[1] : "mobilenet_v2";
  const int64_t size = argc > 2 ? std::stoll(argv[2]) : 160;
  const int64_t batch = argc > 3 ? std::stoll(argv[3]) : 32;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 0;
  if (threads > 0) torch::set_num_threads(threads);
  torch::NoGradGuard no_grad;
  auto net = tabby::nn::make_backbone(arch, false);
  net->eval();
  auto x = torch::rand({batch, 3, size, size});
  auto time_it = [&](const char* name, const torch::Tensor& input) {
    net->forward_features(input);
    const int reps = 3;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) net->forward_features(input);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
    std::printf("%s %s %lldpx batch %lld: %.1f ms/image, %.0f images/s\n", arch.c_str(), name, (long long)size,
                (long long)batch, s * 1000 / batch, batch / s);
  };
  time_it("nchw", x);
  for (auto& p : net->parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
  }
  time_it("channels_last", x.contiguous(torch::MemoryFormat::ChannelsLast));
  return 0;
}
