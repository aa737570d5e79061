// Where `--weights imagenet` comes from. Each backbone has standard ImageNet
// weights: torchvision's IMAGENET1K_V1 file, pinned here by URL and full SHA-256.
// Resolution looks for a local copy first and downloads only when none exists:
//   1. $TABBY_WEIGHTS_DIR
//   2. <shared root>/weights for each shared root (tabby::shared_roots())
//   3. tabby::cache_dir()/weights
// trying, in each folder, `<arch>_imagenet.safetensors`, `<arch>_imagenet.pth`
// and torchvision's file name. If none is found the file is downloaded into the
// cache (3), unless $TABBY_OFFLINE=1. $TABBY_WEIGHTS_BASE_URL replaces the
// download host and folder (a mirror: <base>/<torchvision file name>).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace tabby {

struct PretrainedEntry {
  std::string arch;       // tabby's backbone name, e.g. "resnet18"
  std::string file_name;  // torchvision's, e.g. "resnet18-f37072fd.pth"
  std::string url;
  std::string sha256;     // full hex digest of the file
};

// The registry entry for `arch`, or nullptr when there is none.
const PretrainedEntry* find_pretrained(const std::string& arch);

// Backbone names with registered weights, sorted.
std::vector<std::string> pretrained_archs();

// Adds an entry or replaces the one for the same arch (for tests, and for
// programs that ship their own weights).
void register_pretrained(const PretrainedEntry& entry);

// The URL a download of `entry` uses: its own, or the mirror's from
// $TABBY_WEIGHTS_BASE_URL.
std::string pretrained_download_url(const PretrainedEntry& entry);

// The folders searched, in order (existing or not).
std::vector<std::filesystem::path> pretrained_search_dirs();

// Path to the ImageNet weights of `arch` (see the top of this file). Throws
// tabby::Error for an unknown arch, when offline and nothing is found (listing
// the places searched), or when the download fails.
std::filesystem::path resolve_pretrained_weights(const std::string& arch);

}  // namespace tabby
