// tabby cache list|remove|prune: the disk caches of decoded images
// (pipeline/rows_file.h), so a user sees what they take and takes it back.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tabby/cli/commands.h"
#include "tabby/pipeline/cache_policy.h"
#include "tabby/pipeline/rows_file.h"
#include "tabby/util/error.h"

namespace tabby::cli {

namespace {

struct CacheFlags {
  std::string dir;
  bool json = false;
  std::vector<std::string> keys;
  bool all = false;
  double max_gb = -1;
};

fs::path folder_of(const CacheFlags& f) { return f.dir.empty() ? default_data_cache_policy().folder() : fs::path(f.dir); }

std::string age_of(fs::file_time_type t) {
  const auto age = std::chrono::duration_cast<std::chrono::seconds>(fs::file_time_type::clock::now() - t).count();
  if (age < 120) return fmt::format("{}s ago", std::max<long long>(0, age));
  if (age < 2 * 3600) return fmt::format("{}m ago", age / 60);
  if (age < 2 * 86400) return fmt::format("{}h ago", age / 3600);
  return fmt::format("{}d ago", age / 86400);
}

std::string state_of(const RowsFileInfo& f) {
  if (!f.finished) return f.writer_alive ? "being written" : "abandoned (writer gone)";
  return f.problem.empty() ? "ready" : "damaged: " + f.problem;
}

int list_caches(const CacheFlags& f) {
  const fs::path dir = folder_of(f);
  auto files = list_rows_files(dir);
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.last_used > b.last_used; });
  uint64_t total = 0;
  for (const auto& c : files) total += c.bytes;
  if (f.json) {
    nlohmann::json j;
    j["folder"] = dir.string();
    j["total_bytes"] = total;
    j["caches"] = nlohmann::json::array();
    for (const auto& c : files) {
      j["caches"].push_back({{"key", c.key}, {"path", c.path.string()}, {"state", state_of(c)}, {"bytes", c.bytes},
                             {"images", c.rows}, {"files", c.files}, {"height", c.height}, {"width", c.width},
                             {"source", c.source}, {"last_used", age_of(c.last_used)}});
    }
    print_json(j.dump(2));
    return 0;
  }
  std::printf("%s: %zu cache file%s, %.2f GB\n", dir.string().c_str(), files.size(), files.size() == 1 ? "" : "s",
              total / 1e9);
  for (const auto& c : files) {
    std::printf("  %s  %8.2f GB  %7lld images  %4lldx%-4lld  %-10s  %s  %s\n", c.key.c_str(), c.bytes / 1e9,
                static_cast<long long>(c.rows), static_cast<long long>(c.width), static_cast<long long>(c.height),
                age_of(c.last_used).c_str(), state_of(c).c_str(), c.source.c_str());
  }
  return 0;
}

int remove_caches(const CacheFlags& f) {
  if (f.keys.empty() && !f.all) {
    throw UsageError("tabby cache remove needs KEY... or --all", "`tabby cache list` shows the keys");
  }
  const fs::path dir = folder_of(f);
  uint64_t freed = 0;
  int removed = 0;
  for (const auto& c : list_rows_files(dir)) {
    const bool named = std::find(f.keys.begin(), f.keys.end(), c.key) != f.keys.end();
    if (!(f.all || named) || (!c.finished && c.writer_alive)) continue;
    std::error_code ec;
    if (fs::remove(c.path, ec)) {
      freed += c.bytes;
      ++removed;
    }
  }
  for (const auto& key : f.keys) {
    std::error_code ec;
    fs::remove(dir / (key + ".lock"), ec);
  }
  if (f.all) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".lock") fs::remove(e.path(), ec);
    }
  }
  if (removed == 0 && !f.keys.empty()) {
    throw Error("no cache in " + dir.string() + " has the key " + f.keys.front(), "`tabby cache list` shows the keys");
  }
  std::printf("removed %d cache file%s from %s, %.2f GB freed\n", removed, removed == 1 ? "" : "s",
              dir.string().c_str(), freed / 1e9);
  return 0;
}

int prune_caches(const CacheFlags& f) {
  if (f.max_gb < 0) throw UsageError("tabby cache prune needs --max-size GB", "e.g. tabby cache prune --max-size 50");
  const fs::path dir = folder_of(f);
  const int abandoned = remove_abandoned_partials(dir);
  auto files = list_rows_files(dir);
  // Damaged files first, then the least recently used.
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    if (a.problem.empty() != b.problem.empty()) return !a.problem.empty();
    return a.last_used < b.last_used;
  });
  uint64_t total = 0;
  for (const auto& c : files) total += c.bytes;
  const auto cap = static_cast<uint64_t>(f.max_gb * 1e9);
  int removed = 0;
  uint64_t freed = 0;
  for (const auto& c : files) {
    if (total <= cap && c.problem.empty()) break;
    if (!c.finished) continue;  // a writer still at work
    std::error_code ec;
    if (fs::remove(c.path, ec)) {
      total -= c.bytes;
      freed += c.bytes;
      ++removed;
    }
  }
  std::printf("%s: removed %d cache file%s (%.2f GB) and %d abandoned partial file%s; %.2f GB left\n",
              dir.string().c_str(), removed, removed == 1 ? "" : "s", freed / 1e9, abandoned,
              abandoned == 1 ? "" : "s", total / 1e9);
  return 0;
}

}  // namespace

Command add_cache(CLI::App& root) {
  auto f = std::make_shared<CacheFlags>();
  auto action = std::make_shared<Action>();
  CLI::App* app = root.add_subcommand("cache", "List, remove or cap the disk caches of decoded images");
  app->require_subcommand(1);
  app->add_option("--cache-dir", f->dir, "Cache folder (default $TABBY_CACHE_DIR/datasets, ~/.cache/tabby/datasets)");

  CLI::App* list = app->add_subcommand("list", "Each cache: key, size, images, image size, last use, state, data");
  list->add_flag("--json", f->json, "Print the list as JSON");
  list->callback([f, action] { *action = [f] { return list_caches(*f); }; });

  CLI::App* remove = app->add_subcommand("remove", "Remove caches by key (or all of them)");
  remove->add_option("keys", f->keys, "Keys, as `tabby cache list` shows them");
  remove->add_flag("--all", f->all, "Remove every cache in the folder");
  remove->callback([f, action] { *action = [f] { return remove_caches(*f); }; });

  CLI::App* prune = app->add_subcommand(
      "prune", "Remove the least recently used caches until the folder holds at most --max-size GB");
  prune->add_option("--max-size", f->max_gb, "Gigabytes to keep at most (0 removes every cache)")->required();
  prune->callback([f, action] { *action = [f] { return prune_caches(*f); }; });

  for (auto* sub : {list, remove, prune}) sub->fallthrough();
  Action run = [action]() -> int { return (*action)(); };
  return {app, run};
}

}  // namespace tabby::cli
