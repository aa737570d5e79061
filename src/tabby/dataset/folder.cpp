// Folder scanning: class sub-folders to labels, files walked recursively, in a
// fixed order (see folder.h). Paths are handled as bytes throughout, so file
// names that are not valid UTF-8 are listed like any other.
#include "tabby/dataset/folder.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>
#include <utility>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

bool is_hidden(const fs::path& path) {
  const std::string name = path.filename().native();  // a copy: filename() is a temporary
  return !name.empty() && name[0] == '.';
}

std::string layout_hint(const fs::path& dir) {
  return "expected one sub-folder per class, e.g. " + (dir / "cats" / "*.jpg").string();
}

enum class EntryKind { file, folder, dangling_link, other };

// What an entry is, after following a symlink when that is allowed. A symlinked
// folder counts as `other` (skipped) when folders are not followed.
EntryKind classify(const fs::directory_entry& entry, bool follow_symlinks) {
  std::error_code ec;
  const fs::file_status link_status = entry.symlink_status(ec);
  if (ec) return EntryKind::other;
  const bool is_link = fs::is_symlink(link_status);
  fs::file_status target = link_status;
  if (is_link) {
    target = fs::status(entry.path(), ec);  // ELOOP / ENOENT land here
    if (ec || !fs::exists(target)) return EntryKind::dangling_link;
  }
  if (fs::is_directory(target)) return (!is_link || follow_symlinks) ? EntryKind::folder : EntryKind::other;
  if (fs::is_regular_file(target)) return EntryKind::file;
  return EntryKind::other;
}

// The entries of one folder, or a tabby::Error naming it.
std::vector<fs::directory_entry> read_folder(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    throw Error("cannot read folder '" + dir.string() + "': " + ec.message(),
                "check that the folder exists and is readable");
  }
  std::vector<fs::directory_entry> entries;
  const fs::directory_iterator end;
  while (it != end) {
    entries.push_back(*it);
    it.increment(ec);
    if (ec) {
      throw Error("cannot read folder '" + dir.string() + "': " + ec.message(),
                  "check that the folder is readable");
    }
  }
  return entries;
}

void check_dataset_folder(const fs::path& dir) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  // ELOOP (a symlink loop), EACCES on a parent, ...: say so, not "missing".
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory) {
    throw Error("cannot read dataset folder '" + dir.string() + "': " + ec.message(),
                "check that the path and the folders above it are readable");
  }
  if (!fs::exists(status)) {
    throw Error("dataset folder '" + dir.string() + "' does not exist", layout_hint(dir));
  }
  if (!fs::is_directory(status)) {
    throw Error("'" + dir.string() + "' is not a folder", layout_hint(dir));
  }
}

struct TopLevel {
  std::vector<std::string> class_folders;  // byte order
  size_t loose_files = 0;                  // files directly in DIR (ignored)
};

TopLevel read_top_level(const fs::path& dir, bool follow_symlinks) {
  check_dataset_folder(dir);
  TopLevel top;
  for (const auto& entry : read_folder(dir)) {
    if (is_hidden(entry.path())) continue;
    switch (classify(entry, follow_symlinks)) {
      case EntryKind::folder: top.class_folders.push_back(entry.path().filename().native()); break;
      case EntryKind::file: ++top.loose_files; break;
      default: break;
    }
  }
  std::sort(top.class_folders.begin(), top.class_folders.end());
  return top;
}

std::vector<std::string> normalized_extensions(const std::vector<std::string>& extensions) {
  if (extensions.empty()) throw UsageError("no image file extensions given", "give at least one, e.g. .jpg");
  std::vector<std::string> out;
  for (std::string ext : extensions) {
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!ext.empty() && ext[0] != '.') ext.insert(ext.begin(), '.');
    out.push_back(ext);
  }
  return out;
}

struct WalkStats {
  size_t non_image_files = 0;
  size_t repeated_folders = 0;  // reached twice through symlinks (loops included)
  std::vector<fs::path> dangling_links;
};

// Image files below one class folder, in Keras' walk order: folders sorted by
// path, files within a folder sorted by name.
std::vector<fs::path> walk_class_folder(const fs::path& class_dir, const std::vector<std::string>& extensions,
                                        bool follow_symlinks, WalkStats& stats) {
  struct Found {
    std::string folder;
    std::string name;
    fs::path path;
  };
  std::vector<Found> found;
  std::set<std::pair<dev_t, ino_t>> visited;  // physical folders walked so far
  std::vector<fs::path> pending{class_dir};
  while (!pending.empty()) {
    const fs::path dir = std::move(pending.back());
    pending.pop_back();
    struct stat info {};
    if (::stat(dir.c_str(), &info) == 0 && !visited.insert({info.st_dev, info.st_ino}).second) {
      ++stats.repeated_folders;
      continue;
    }
    for (const auto& entry : read_folder(dir)) {
      if (is_hidden(entry.path())) continue;
      switch (classify(entry, follow_symlinks)) {
        case EntryKind::folder: pending.push_back(entry.path()); break;
        case EntryKind::file:
          if (std::find(extensions.begin(), extensions.end(), lower_extension(entry.path())) != extensions.end()) {
            found.push_back({dir.native(), entry.path().filename().native(), entry.path()});
          } else {
            ++stats.non_image_files;
          }
          break;
        case EntryKind::dangling_link: stats.dangling_links.push_back(entry.path()); break;
        case EntryKind::other: break;
      }
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return std::tie(a.folder, a.name) < std::tie(b.folder, b.name); });
  std::vector<fs::path> paths;
  paths.reserve(found.size());
  for (auto& f : found) paths.push_back(std::move(f.path));
  return paths;
}

// The classes to scan, in label order, after applying options.class_names.
std::vector<std::string> choose_classes(const fs::path& dir, const std::vector<std::string>& folders,
                                        const std::optional<std::vector<std::string>>& wanted) {
  if (!wanted) return folders;
  if (wanted->empty()) throw UsageError("the list of class names is empty", "give at least one class name");
  std::set<std::string> seen;
  for (const auto& name : *wanted) {
    if (!seen.insert(name).second) throw UsageError("class name '" + name + "' is listed twice");
  }
  const std::set<std::string> present(folders.begin(), folders.end());
  std::vector<std::string> missing, extra;
  for (const auto& name : *wanted) {
    if (!present.count(name)) missing.push_back(name);
  }
  for (const auto& name : folders) {
    if (!seen.count(name)) extra.push_back(name);
  }
  if (missing.size() == wanted->size()) {
    throw Error("none of the class names (" + util::join(*wanted) + ") is a sub-folder of '" + dir.string() + "'",
                "its sub-folders are: " + util::join(folders));
  }
  for (const auto& name : missing) {
    log::warnf("class '{}' has no folder in '{}': it gets no samples", name, dir.string());
  }
  if (!extra.empty()) {
    log::warnf("ignoring {} sub-folder(s) of '{}' that are not among the class names: {}", extra.size(), dir.string(),
               util::join(extra));
  }
  return *wanted;
}

}  // namespace

std::vector<std::string> list_class_folders(const fs::path& dir, bool follow_symlinks) {
  return read_top_level(dir, follow_symlinks).class_folders;
}

Dataset scan_folder(const fs::path& dir, const FolderScanOptions& options) {
  const std::vector<std::string> extensions = normalized_extensions(options.extensions);
  const TopLevel top = read_top_level(dir, options.follow_symlinks);
  if (top.class_folders.empty()) {
    throw Error("no class sub-folders in '" + dir.string() + "'", layout_hint(dir));
  }
  if (top.loose_files > 0) {
    log::infof("ignoring {} file(s) directly in '{}': only files inside class sub-folders are used", top.loose_files,
               dir.string());
  }

  Dataset dataset;
  dataset.source = dir.string();
  dataset.class_names = choose_classes(dir, top.class_folders, options.class_names);
  const std::set<std::string> present(top.class_folders.begin(), top.class_folders.end());

  WalkStats stats;
  for (size_t label = 0; label < dataset.class_names.size(); ++label) {
    const std::string& name = dataset.class_names[label];
    if (!present.count(name)) continue;
    const fs::path class_dir = dir / name;
    std::vector<fs::path> files = walk_class_folder(class_dir, extensions, options.follow_symlinks, stats);
    if (files.empty()) {
      throw Error("class '" + name + "' has no images (looked for " + util::join(extensions, " ") + " in '" +
                      class_dir.string() + "')",
                  "put image files in that folder, or remove it");
    }
    for (auto& path : files) dataset.samples.push_back({std::move(path), static_cast<int>(label)});
  }

  if (!stats.dangling_links.empty()) {
    log::warnf("skipped {} broken symlink(s) in '{}', e.g. '{}'", stats.dangling_links.size(), dir.string(),
               stats.dangling_links.front().string());
  }
  if (stats.repeated_folders > 0) {
    log::warnf("skipped {} symlinked folder(s) in '{}' already walked (a symlink loop or a second link)",
               stats.repeated_folders, dir.string());
  }
  if (stats.non_image_files > 0) {
    log::infof("ignored {} file(s) in '{}' without an image extension ({})", stats.non_image_files, dir.string(),
               util::join(extensions, " "));
  }
  log::infof("Found {} files belonging to {} classes.", dataset.samples.size(), dataset.class_names.size());
  return dataset;
}

}  // namespace tabby
