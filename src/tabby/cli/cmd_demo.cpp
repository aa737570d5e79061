// tabby demo: the main job on its default data.
#include <memory>

#include "tabby/api/demo.h"
#include "tabby/cli/commands.h"

namespace tabby::cli {

Command add_demo(CLI::App& root) {
  auto o = std::make_shared<DemoOptions>();
  auto out = std::make_shared<std::string>(o->out.string());
  CLI::App* app = root.add_subcommand(
      "demo", "Train, evaluate and use a cats-vs-dogs classifier (finds or downloads the data; a few minutes on a CPU)");
  app->add_option("--out", *out, "Run folder (default runs/demo)");
  app->add_option("--data", o->data, "cats_and_dogs_filtered folder (default: $TABBY_DATA_DIR, ../shared/datasets, cache, download)");
  app->add_option("--device", o->device, "auto, cpu, cuda or cuda:N");
  app->add_option("--threads", o->threads, "CPU threads (default: all cores)");
  app->add_flag("--quick", o->quick, "A smaller, faster run (for smoke tests)");
  add_data_cache_flags(app);
  Action run = [o, out]() -> int {
    o->out = *out;
    return run_demo(*o);
  };
  return {app, run};
}

}  // namespace tabby::cli
