// `tabby demo`: the whole workflow on the cats-vs-dogs data in a few minutes
// on a laptop CPU — find (or download) the data, train a classifier by
// transfer learning from ImageNet MobileNetV2 (head first, then a short
// fine-tune), evaluate it, and predict a few images — saying what it does.
// Without the pretrained weights (offline, none cached) it trains the
// tutorial's small CNN instead.
#pragma once

#include <filesystem>
#include <string>

namespace tabby {

struct DemoOptions {
  std::filesystem::path out = "runs/demo";
  std::string data;        // cats_and_dogs_filtered folder; empty: search/download
  std::string device = "auto";
  int threads = 0;
  bool quick = false;      // a smaller, faster variant (used by tests)
};

// Runs the demo, printing a narrative on stderr and results on stdout.
// Returns the process exit code.
int run_demo(const DemoOptions& options);

}  // namespace tabby
