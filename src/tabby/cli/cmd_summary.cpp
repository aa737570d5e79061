// tabby summary --model X --image-size N: the Keras-style model table.
#include <memory>

#include "tabby/config/backbone_table.h"
#include "tabby/config/model_spec.h"
#include "tabby/config/presets.h"
#include "tabby/nn/network.h"
#include "tabby/nn/summary.h"
#include "tabby/cli/commands.h"
#include "tabby/util/error.h"

namespace tabby::cli {

Command add_summary(CLI::App& root) {
  struct Flags {
    std::string model, image_size;
    int64_t classes = 2;
    bool json = false, list = false, freeze = false, include_top = false;
    int fine_tune_last = -1;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* app = root.add_subcommand("summary", "Print a model's layers, output shapes and parameter counts");
  app->add_option("--model", f->model, "Preset name or model .toml file");
  app->add_option("--image-size", f->image_size, "Input size N or HxW (default: the backbone's, else 180)");
  app->add_option("--classes", f->classes, "Number of classes (default 2)");
  app->add_flag("--freeze-backbone", f->freeze, "Show counts with the backbone frozen");
  app->add_option("--fine-tune-last", f->fine_tune_last, "Show counts with the backbone's last N blocks trainable");
  app->add_flag("--include-top", f->include_top, "Use the backbone's own classifier");
  app->add_flag("--list", f->list, "List the presets");
  app->add_flag("--json", f->json, "Print the summary as JSON");
  Action run = [f]() -> int {
    if (f->list) {
      for (const auto& name : preset_names()) std::printf("%-28s %s\n", name.c_str(), preset_description(name).c_str());
      return 0;
    }
    if (f->model.empty()) throw UsageError("--model is required", "see `tabby summary --list` for the presets");
    ModelSpec spec = resolve_model(f->model);
    std::string size = f->image_size;
    if (size.empty()) {
      const auto idx = spec.backbone_index();
      const BackboneInfo* info = idx ? find_backbone(spec.layers[*idx].get_string("arch", "")) : nullptr;
      size = std::to_string(info ? info->default_image_size : 180);
    }
    auto [h, w] = parse_image_size(size);
    if (f->include_top || f->freeze) {
      auto idx = spec.backbone_index();
      if (!idx) throw UsageError("--freeze-backbone / --include-top need a model with a backbone");
      if (f->include_top) {
        spec.layers.resize(*idx + 1);
        spec.layers[*idx].params["include_top"] = true;
      }
      if (f->freeze) spec.layers[*idx].params["trainable"] = false;
    }
    nn::Network net(spec, f->classes, h, w);
    if (f->fine_tune_last >= 0) net->set_backbone_trainable_blocks(f->fine_tune_last, true);
    auto summary = nn::summarize(*net);
    if (f->json) {
      print_json(nn::summary_to_json(summary).dump(2));
    } else {
      std::fputs(nn::format_summary(summary).c_str(), stdout);
    }
    return 0;
  };
  return {app, run};
}

}  // namespace tabby::cli
