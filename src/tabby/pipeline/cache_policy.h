// Where a dataset's decoded images live while it trains or is evaluated:
//   memory  one uint8 tensor in RAM (fastest; private memory grows with the set)
//   disk    a file of decoded rows under the cache folder, memory-mapped: the
//           kernel's page cache holds it, shared by every process of the machine
//           and reused by later runs on the same files (pipeline/rows_file.h)
//   none    nothing kept: every batch decodes its files again on worker threads
//           (as a DataLoader does), after a first pass that finds the broken ones
//   auto    memory while the decoded set (times the ranks on this machine that
//           would each hold it) takes at most a quarter of the RAM, and for several
//           ranks at most 256 MB; else disk while the cache folder's disk has room
//           for it; else none
// The choice never changes a result: rows, order and batches are the same.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "tabby/util/enum_names.h"

namespace tabby {

enum class CacheMode { automatic, memory, disk, none };
TABBY_ENUM_NAMES(CacheMode, {CacheMode::automatic, "auto"}, {CacheMode::memory, "memory"}, {CacheMode::disk, "disk"},
                 {CacheMode::none, "none"});

struct DataCachePolicy {
  CacheMode mode = CacheMode::automatic;
  std::filesystem::path dir;  // empty: data_cache_dir()

  std::filesystem::path folder() const;
};

// $TABBY_CACHE_DIR/datasets (see util/settings.h for the cache's own default).
std::filesystem::path data_cache_dir();

// The policy used when an ImageCacheOptions names none: TABBY_DATA_CACHE
// (auto|memory|disk) and the folder above, until a program (the CLI's --cache
// and --cache-dir) sets another.
DataCachePolicy default_data_cache_policy();
void set_default_data_cache_policy(const DataCachePolicy& policy);

// "disk" -> CacheMode::disk; a tabby::UsageError naming `flag` for anything else.
CacheMode parse_cache_mode(const std::string& word, const std::string& flag = "--cache");

// What `auto` becomes for a decoded set of `bytes`, held by `copies` processes of
// this machine (memory mode gives each its own copy), with `ram_bytes` of RAM and
// `disk_free_bytes` free where the disk cache would go.
CacheMode choose_cache_mode(CacheMode asked, uint64_t bytes, int copies, uint64_t ram_bytes,
                            uint64_t disk_free_bytes = UINT64_MAX);

// Bytes free for an unprivileged writer on the disk that holds `dir` (or its
// nearest existing parent); UINT64_MAX when it cannot be told.
uint64_t disk_free_bytes(const std::filesystem::path& dir);

// Frozen-backbone features larger than this live in a file under the cache
// folder (page cache) instead of private memory: TABBY_FEATURES_IN_MEMORY_MB,
// default 1024.
uint64_t largest_in_memory_features_bytes();

// This machine's RAM in bytes (0 when unknown).
uint64_t physical_memory_bytes();

}  // namespace tabby
