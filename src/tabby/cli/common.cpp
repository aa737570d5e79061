#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "tabby/cli/commands.h"
#include "tabby/pipeline/cache_policy.h"
#include "tabby/util/error.h"

namespace tabby::cli {

std::pair<int64_t, int64_t> parse_image_size(const std::string& text) {
  auto parse = [&](const std::string& s) -> int64_t {
    try {
      size_t used = 0;
      long long v = std::stoll(s, &used);
      if (used != s.size() || v < 8 || v > 4096) throw std::out_of_range(s);
      return v;
    } catch (const std::exception&) {
      throw UsageError("--image-size " + text + ": expected N or HxW with sizes from 8 to 4096 (e.g. 150 or 160x120)");
    }
  };
  auto x = text.find_first_of("xX,");
  if (x == std::string::npos) {
    const int64_t n = parse(text);
    return {n, n};
  }
  return {parse(text.substr(0, x)), parse(text.substr(x + 1))};
}

namespace {
std::vector<std::string> g_program_arguments;
}

void set_program_arguments(int argc, char** argv) { g_program_arguments.assign(argv, argv + argc); }
const std::vector<std::string>& program_arguments() { return g_program_arguments; }

void add_data_cache_flags(CLI::App* app, const std::string& group) {
  auto mode = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  app->add_option("--cache", *mode,
                  "Where decoded images live: memory, disk (a memory-mapped file under --cache-dir that later runs "
                  "on the same files reuse), none (decoded again every epoch) or auto (memory while they take under "
                  "a quarter of the RAM, else disk while it has room, else none; default, or $TABBY_DATA_CACHE)")
      ->group(group);
  app->add_option("--cache-dir", *dir, "Folder of the disk cache (default $TABBY_CACHE_DIR/datasets, ~/.cache/tabby/datasets)")
      ->group(group);
  app->parse_complete_callback([mode, dir] {
    if (mode->empty() && dir->empty()) return;
    DataCachePolicy policy = default_data_cache_policy();
    if (!mode->empty()) {
      // Inside CLI11's parse: its error path prints the message and exits 2.
      try {
        policy.mode = parse_cache_mode(*mode);
      } catch (const UsageError& e) {
        throw CLI::ValidationError(e.what());
      }
    }
    if (!dir->empty()) policy.dir = *dir;
    set_default_data_cache_policy(policy);
  });
}

void print_json(const std::string& json_text) {
  std::fputs(json_text.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace tabby::cli
