#include "tabby/serve/instances.h"

#include <algorithm>

namespace tabby::serve {

InstancePlan plan_instances(int instances, int threads, bool on_gpu, int cores) {
  cores = std::max(1, cores);
  InstancePlan plan;
  if (on_gpu) {
    plan.instances = std::max(1, instances);
    plan.threads = threads > 0 ? threads : cores;
    return plan;
  }
  if (instances > 0) {
    plan.instances = instances;
  } else if (threads > 0) {
    plan.instances = std::max(1, cores / threads);
  } else {
    plan.instances = std::clamp(cores < 4 ? cores : cores / 2, 1, 4);
  }
  plan.threads = threads > 0 ? threads : std::max(1, cores / plan.instances);
  return plan;
}

}  // namespace tabby::serve
