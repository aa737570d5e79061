#include "tabby/inference/device.h"

#include <ATen/Context.h>

#include "tabby/util/error.h"

namespace tabby {

namespace {

// Fixed input sizes batch after batch: cuDNN's autotuner picks the fastest
// convolution algorithms once and reuses them.
torch::Device cuda_device(int index) {
  at::globalContext().setBenchmarkCuDNN(true);
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace

torch::Device resolve_device(const std::string& spec) {
  if (spec.empty() || spec == "auto") {
    return torch::cuda::is_available() ? cuda_device(0) : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw UsageError("--device " + spec + ": no CUDA GPU is available to this build of tabby",
                       "use --device cpu (or auto), or build against a CUDA-enabled LibTorch");
    }
    int index = 0;
    if (spec.size() > 4) {
      if (spec[4] != ':') throw UsageError("--device " + spec + ": expected cuda or cuda:N");
      try {
        index = std::stoi(spec.substr(5));
      } catch (const std::exception&) {
        throw UsageError("--device " + spec + ": expected cuda or cuda:N");
      }
    }
    const int count = static_cast<int>(torch::cuda::device_count());
    if (index < 0 || index >= count) {
      throw UsageError("--device " + spec + ": there are " + std::to_string(count) + " GPU(s)");
    }
    return cuda_device(index);
  }
  throw UsageError("--device " + spec + ": unknown device", "use auto, cpu, cuda or cuda:N");
}

std::string describe_device(const torch::Device& device) {
  if (device.is_cpu()) return "cpu (" + std::to_string(torch::get_num_threads()) + " threads)";
  return device.str();
}

}  // namespace tabby
