// How many instances of a served model run side by side (each with its own
// inference thread taking batches from the model's queue), and how many CPU
// threads each forward pass uses.
#pragma once

namespace tabby::serve {

struct InstancePlan {
  int instances = 1;
  int threads = 1;
};

// Settings of 0 are chosen here. On a GPU: one instance. On the CPU: one
// instance per two cores (one per core below four cores), at most four, and
// the cores shared out between them; a thread count alone gives
// cores / threads instances. Why (bench/RESULTS.md, 2 cores): two
// single-threaded instances served more than one two-threaded one, whose
// forward passes wait at every layer for the slower thread.
InstancePlan plan_instances(int instances, int threads, bool on_gpu, int cores);

}  // namespace tabby::serve
