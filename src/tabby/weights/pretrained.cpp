// The pretrained-weights registry and the search for a local copy.
#include "tabby/weights/pretrained.h"

#include <cctype>
#include <map>
#include <mutex>

#include "tabby/util/error.h"
#include "tabby/util/log.h"
#include "tabby/util/settings.h"
#include "tabby/weights/download.h"

namespace tabby {

namespace fs = std::filesystem;

namespace {

// torchvision's IMAGENET1K_V1 weights. torchvision puts the first 8 hex digits
// of each file's SHA-256 in its name (torch.hub checks only those); the full
// digests below are the values recorded for these exact files by several
// independent projects that pin them, and each agrees with its name's prefix
// (a unit test checks that). VGG16, SqueezeNet 1.1 and MobileNetV2 predate
// PyTorch 1.6 and use the legacy (non-zip) torch.save format, which read_pth
// also understands.
std::map<std::string, PretrainedEntry>& registry() {
  static std::map<std::string, PretrainedEntry> entries = [] {
    const std::string base = "https://download.pytorch.org/models/";
    std::map<std::string, PretrainedEntry> m;
    auto add = [&](const char* arch, const char* file, const char* sha) {
      m[arch] = PretrainedEntry{arch, file, base + file, sha};
    };
    add("mobilenet_v2", "mobilenet_v2-b0353104.pth",
        "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889");
    add("mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth",
        "8738ca797c879b547d18bbd15da5736ff2557b2036a9af72225393ca61759a04");
    add("mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth",
        "047dcff4addef86ea5bc2eff13c9614dc11f47ab1160d0a71a25e7db994f4e1f");
    add("resnet18", "resnet18-f37072fd.pth", "f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec");
    add("resnet50", "resnet50-0676ba61.pth", "0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a");
    add("vgg16", "vgg16-397923af.pth", "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0");
    add("squeezenet1_1", "squeezenet1_1-b8a52dc0.pth",
        "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b");
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
