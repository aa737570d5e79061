#include "tabby/util/settings.h"

#include <cstdlib>

namespace tabby {

std::optional<std::string> env_setting(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::vector<fs::path> shared_roots() {
  std::vector<fs::path> candidates;
  if (auto v = env_setting("TABBY_SHARED")) candidates.emplace_back(*v);
  candidates.emplace_back("shared");
  candidates.emplace_back("../shared");
#ifdef TABBY_SOURCE_DIR
  candidates.push_back(fs::path(TABBY_SOURCE_DIR) / ".." / "shared");
#endif
  std::vector<fs::path> found;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (!fs::is_directory(c, ec)) continue;
    fs::path canon = fs::weakly_canonical(c, ec);
    if (ec) canon = c;
    bool seen = false;
    for (const auto& f : found) seen = seen || f == canon;
    if (!seen) found.push_back(canon);
  }
  return found;
}

fs::path cache_dir() {
  if (auto v = env_setting("TABBY_CACHE_DIR")) return fs::path(*v);
  if (auto v = env_setting("XDG_CACHE_HOME")) return fs::path(*v) / "tabby";
  if (auto v = env_setting("HOME")) return fs::path(*v) / ".cache" / "tabby";
  return fs::temp_directory_path() / "tabby-cache";
}

}  // namespace tabby
