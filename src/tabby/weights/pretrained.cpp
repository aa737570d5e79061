// The pretrained-weights registry and the search for a local copy.
#include "tabby/weights/pretrained.h"

#include <cctype>
#include <map>
#include <mutex>

#include "tabby/config/backbone_table.h"
#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/settings.h"
#include "tabby/weights/download.h"

namespace tabby {

namespace fs = std::filesystem;

namespace {

// Starts as the backbone table's ImageNet weights (the entries whose file has a
// known digest); tests and programs that ship their own weights add entries.
std::map<std::string, PretrainedEntry>& registry() {
  static std::map<std::string, PretrainedEntry> entries = [] {
    std::map<std::string, PretrainedEntry> m;
    for (const BackboneInfo& b : backbone_table()) {
      if (b.imagenet) m[b.name] = PretrainedEntry{b.name, b.imagenet->file_name, b.imagenet->url, b.imagenet->sha256};
    }
    return m;
  }();
  return entries;
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

// Arch names become file names: keep them to a safe alphabet.
void check_arch_name(const std::string& arch) {
  bool ok = !arch.empty() && arch.size() <= 64 && arch[0] != '.';
  for (char c : arch) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  if (!ok) throw Error("'" + arch + "' is not a backbone name", "use a name such as mobilenet_v2 or resnet18");
}

bool offline() {
  auto v = env_setting("TABBY_OFFLINE");
  return v && (*v == "1" || *v == "true" || *v == "yes");
}

std::string join_paths(const std::vector<fs::path>& dirs) {
  std::string s;
  for (const auto& d : dirs) s += (s.empty() ? "" : ", ") + d.string();
  return s;
}

}  // namespace

const PretrainedEntry* find_pretrained(const std::string& arch) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& r = registry();
  auto it = r.find(arch);
  return it == r.end() ? nullptr : &it->second;
}

std::vector<std::string> pretrained_archs() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> out;
  for (const auto& [arch, e] : registry()) out.push_back(arch);
  return out;
}

void register_pretrained(const PretrainedEntry& entry) {
  check_arch_name(entry.arch);
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[entry.arch] = entry;
}

std::string pretrained_download_url(const PretrainedEntry& entry) {
  if (auto base = env_setting("TABBY_WEIGHTS_BASE_URL")) {
    std::string b = *base;
    while (!b.empty() && b.back() == '/') b.pop_back();
    return b + "/" + entry.file_name;
  }
  return entry.url;
}

std::vector<fs::path> pretrained_search_dirs() {
  std::vector<fs::path> dirs;
  if (auto v = env_setting("TABBY_WEIGHTS_DIR")) dirs.emplace_back(*v);
  for (const fs::path& root : shared_roots()) dirs.push_back(root / "weights");
  dirs.push_back(cache_dir() / "weights");
  return dirs;
}

fs::path resolve_pretrained_weights(const std::string& arch) {
  check_arch_name(arch);
  const PretrainedEntry* entry = find_pretrained(arch);
  std::vector<std::string> names = {arch + "_imagenet.safetensors", arch + "_imagenet.pth"};
  if (entry) names.push_back(entry->file_name);

  const std::vector<fs::path> dirs = pretrained_search_dirs();
  for (const fs::path& dir : dirs) {
    for (const std::string& name : names) {
      std::error_code ec;
      if (fs::is_regular_file(dir / name, ec)) return dir / name;
    }
  }

  if (!entry) {
    std::string known;
    for (const std::string& a : pretrained_archs()) known += (known.empty() ? "" : ", ") + a;
    throw Error("no ImageNet weights for backbone '" + arch + "': none found in " + join_paths(dirs) +
                    ", and none known to download",
                "put " + names[0] + " in one of those folders; backbones with downloadable weights: " + known);
  }
  if (offline()) {
    throw Error("ImageNet weights for '" + arch + "' not found in " + join_paths(dirs) +
                    ", and downloads are off (TABBY_OFFLINE=1)",
                "put " + names[0] + " or " + entry->file_name + " in one of those folders, or unset TABBY_OFFLINE");
  }
  const fs::path dest = cache_dir() / "weights" / entry->file_name;
  const std::string url = pretrained_download_url(*entry);
  log::infof("downloading ImageNet weights for {} from {}", arch, url);
  download_file(url, dest, entry->sha256);
  return dest;
}

}  // namespace tabby
