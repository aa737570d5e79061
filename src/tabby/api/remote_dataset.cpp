#include "tabby/api/remote_dataset.h"

#include <fstream>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/settings.h"
#include "tabby/weights/download.h"
#include "tabby/weights/sha256.h"
#include "tabby/weights/zip_archive.h"

namespace tabby {

const RemoteDataset& cats_and_dogs_filtered() {
  static const RemoteDataset spec = {
      "cats_and_dogs_filtered",
      "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
      "",
      68606236,  // as reported by tf.keras.utils.get_file when downloading it
      {"train/cats", "train/dogs", "validation/cats", "validation/dogs"}};
  return spec;
}

std::vector<fs::path> dataset_search_dirs(const std::string& name) {
  std::vector<fs::path> dirs;
  if (auto d = env_setting("TABBY_DATA_DIR")) dirs.push_back(fs::path(*d) / name);
  for (const auto& root : shared_roots()) dirs.push_back(root / "datasets" / name);
  dirs.push_back(cache_dir() / "datasets" / name);
  return dirs;
}

namespace {

bool has_layout(const fs::path& dir, const RemoteDataset& spec) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& sub : spec.required_dirs) {
    if (!fs::is_directory(dir / sub, ec)) return false;
  }
  return true;
}

bool safe_entry_name(const std::string& name) {
  if (name.empty() || name[0] == '/' || name.find('\\') != std::string::npos) return false;
  for (const auto& part : fs::path(name)) {
    if (part == "..") return false;
  }
  return true;
}

}  // namespace

size_t extract_zip(const fs::path& zip_file, const fs::path& dest_parent) {
  const std::string bytes = read_file(zip_file);
  zip::Reader reader(bytes, zip_file.string());
  size_t written = 0;
  std::string buffer;
  for (const auto& entry : reader.entries()) {
    if (!safe_entry_name(entry.name)) {
      throw Error(zip_file.string() + ": refusing entry '" + entry.name + "' (it would land outside the folder)");
    }
    const fs::path target = dest_parent / entry.name;
    if (!entry.name.empty() && entry.name.back() == '/') {
      ensure_directory(target);
      continue;
    }
    ensure_directory(target.parent_path());
    std::string_view data = reader.read(entry, buffer);  // CRC-checked
    std::ofstream out(target, std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw Error("cannot write '" + target.string() + "'", "check free disk space");
    ++written;
  }
  return written;
}

namespace {

std::string download_url(const RemoteDataset& spec) {
  const auto base = env_setting("TABBY_DATASETS_BASE_URL");
  if (!base) return spec.url;
  return *base + (base->back() == '/' ? "" : "/") + spec.url.substr(spec.url.find_last_of('/') + 1);
}

// The archive in the cache (downloaded when missing), its size and digest checked; returns the digest.
std::string fetched_archive(const RemoteDataset& spec, const fs::path& archive, const fs::path& recorded) {
  std::error_code ec;
  if (!fs::is_regular_file(archive, ec)) {
    const std::string url = download_url(spec);
    log::infof("downloading {} from {}", spec.name, url);
    download_file(url, archive, spec.sha256);
  }
  const uint64_t size = fs::file_size(archive, ec);
  if (spec.size_bytes != 0 && size != spec.size_bytes) {
    fs::remove(archive, ec);
    throw Error(archive.string() + " has " + std::to_string(size) + " bytes, expected " + std::to_string(spec.size_bytes),
                "the download was damaged or the file changed upstream; run again");
  }
  const std::string digest = sha256_file_hex(archive);
  if (fs::is_regular_file(recorded, ec) && read_file(recorded).substr(0, 64) != digest) {
    fs::remove(archive, ec);
    throw Error(archive.string() + " differs from the copy first downloaded (SHA-256 mismatch)",
                "delete " + recorded.string() + " if the change is expected, then run again");
  }
  return digest;
}

// Unpacks into a temporary folder, then moves the dataset into place.
fs::path unpacked(const RemoteDataset& spec, const fs::path& archive, const fs::path& datasets) {
  std::error_code ec;
  const fs::path staging = datasets / ("." + spec.name + ".unpacking");
  fs::remove_all(staging, ec);
  ensure_directory(staging);
  const size_t files = extract_zip(archive, staging);
  if (!has_layout(staging / spec.name, spec)) {
    fs::remove_all(staging, ec);
    throw Error(archive.string() + " does not hold the expected " + spec.name + "/ folders");
  }
  const fs::path final_dir = datasets / spec.name;
  fs::remove_all(final_dir, ec);
  fs::rename(staging / spec.name, final_dir, ec);
  if (ec) throw Error("cannot move the unpacked data into " + final_dir.string() + ": " + ec.message());
  fs::remove_all(staging, ec);
  log::infof("unpacked {} files into {}", files, final_dir.string());
  return final_dir;
}

}  // namespace

fs::path find_or_fetch_dataset(const RemoteDataset& spec) {
  for (const auto& dir : dataset_search_dirs(spec.name)) {
    if (has_layout(dir, spec)) return dir;
  }
  if (env_setting("TABBY_OFFLINE").value_or("0") == "1") {
    std::string searched;
    for (const auto& dir : dataset_search_dirs(spec.name)) searched += "\n  " + dir.string();
    throw Error("dataset " + spec.name + " not found and TABBY_OFFLINE=1; looked in:" + searched,
                "set TABBY_DATA_DIR to a folder holding " + spec.name + "/, or allow the download");
  }
  const fs::path datasets = cache_dir() / "datasets";
  ensure_directory(datasets);
  const fs::path archive = datasets / (spec.name + ".zip");
  const fs::path recorded = datasets / (spec.name + ".zip.sha256");
  const std::string digest = fetched_archive(spec, archive, recorded);
  const fs::path final_dir = unpacked(spec, archive, datasets);
  write_file_atomic(recorded, digest + "\n");
  return final_dir;
}

}  // namespace tabby
