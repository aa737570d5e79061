#include "tabby/pipeline/cache_policy.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>
#include <mutex>
#include <optional>

#include "tabby/util/error.h"
#include "tabby/util/settings.h"

namespace tabby {

namespace {

std::mutex policy_mutex;
constexpr uint64_t kLargestCopiedSetBytes = uint64_t{256} << 20;
std::optional<DataCachePolicy> policy_set;

}  // namespace

std::filesystem::path data_cache_dir() { return cache_dir() / "datasets"; }

std::filesystem::path DataCachePolicy::folder() const { return dir.empty() ? data_cache_dir() : dir; }

CacheMode parse_cache_mode(const std::string& word, const std::string& flag) {
  if (auto mode = enum_from_name<CacheMode>(word)) return *mode;
  throw UsageError(flag + " must be " + enum_choices<CacheMode>() + ", not '" + word + "'",
                   "auto keeps decoded images in memory while they fit comfortably, on disk beyond, and decodes "
                   "them per batch (none) when the disk has no room either");
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

uint64_t largest_in_memory_features_bytes() {
  if (auto mb = env_setting("TABBY_FEATURES_IN_MEMORY_MB")) {
    try {
      size_t used = 0;
      const long long v = std::stoll(*mb, &used);
      if (used == mb->size() && v >= 0) return static_cast<uint64_t>(v) << 20;
    } catch (const std::exception&) {
    }
    throw UsageError("TABBY_FEATURES_IN_MEMORY_MB must be a number of megabytes, not '" + *mb + "'");
  }
  return uint64_t{1} << 30;
}

uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

CacheMode choose_cache_mode(CacheMode asked, uint64_t bytes, int copies, uint64_t ram_bytes,
                            uint64_t disk_free_bytes) {
  if (asked != CacheMode::automatic) return asked;
  // A quarter: the model, its optimizer state, batches in flight and the other
  // splits need the rest, and the page cache keeps a disk cache fast anyway.
  const uint64_t held = bytes * static_cast<uint64_t>(std::max(1, copies));
  // Ranks of one machine that each hold the set in memory also gather it from
  // one another (measured: 10,000 photos at 224 px, 1.5 GB, took 8.6 GB for two
  // ranks); beyond a small set they share the disk cache's one copy instead.
  const bool shared_copy_too_big = copies > 1 && bytes > kLargestCopiedSetBytes;
  if (ram_bytes == 0 || (held <= ram_bytes / 4 && !shared_copy_too_big)) return CacheMode::memory;
  // Room for it with a margin (a twentieth, and a gigabyte) for everything else on that disk.
  const uint64_t margin = bytes / 20 + (uint64_t{1} << 30);
  if (disk_free_bytes == UINT64_MAX || bytes + margin <= disk_free_bytes) return CacheMode::disk;
  return CacheMode::none;
}

uint64_t disk_free_bytes(const std::filesystem::path& dir) {
  std::filesystem::path p = dir;
  std::error_code ec;
  while (!p.empty() && !std::filesystem::exists(p, ec)) {
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  struct statvfs st {};
  if (p.empty() || ::statvfs(p.c_str(), &st) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

}  // namespace tabby
