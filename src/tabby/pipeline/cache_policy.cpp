#include "tabby/pipeline/cache_policy.h"

#include <unistd.h>

#include <mutex>
#include <optional>

#include "tabby/util/error.h"
#include "tabby/util/settings.h"

namespace tabby {

namespace {

std::mutex policy_mutex;
std::optional<DataCachePolicy> policy_set;

}  // namespace

std::filesystem::path data_cache_dir() { return cache_dir() / "datasets"; }

std::filesystem::path DataCachePolicy::folder() const { return dir.empty() ? data_cache_dir() : dir; }

CacheMode parse_cache_mode(const std::string& word, const std::string& flag) {
  if (auto mode = enum_from_name<CacheMode>(word)) return *mode;
  throw UsageError(flag + " must be " + enum_choices<CacheMode>() + ", not '" + word + "'",
                   "auto keeps decoded images in memory while they fit comfortably and on disk beyond");
}

DataCachePolicy default_data_cache_policy() {
  std::lock_guard<std::mutex> lock(policy_mutex);
  if (policy_set) return *policy_set;
  DataCachePolicy p;
  if (auto word = env_setting("TABBY_DATA_CACHE")) p.mode = parse_cache_mode(*word, "TABBY_DATA_CACHE");
  return p;
}

void set_default_data_cache_policy(const DataCachePolicy& policy) {
  std::lock_guard<std::mutex> lock(policy_mutex);
  policy_set = policy;
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

CacheMode choose_cache_mode(CacheMode asked, uint64_t bytes, int copies, uint64_t ram_bytes) {
  if (asked != CacheMode::automatic) return asked;
  if (ram_bytes == 0) return CacheMode::memory;
  // A quarter: the model, its optimizer state, batches in flight and the other
  // splits need the rest, and the page cache keeps a disk cache fast anyway.
  const uint64_t held = bytes * static_cast<uint64_t>(std::max(1, copies));
  return held <= ram_bytes / 4 ? CacheMode::memory : CacheMode::disk;
}

}  // namespace tabby
