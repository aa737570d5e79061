// Datasets from a folder with one sub-folder per class, as Keras'
// `image_dataset_from_directory(labels="inferred")` reads them.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tabby/dataset/dataset.h"
#include "tabby/dataset/image_files.h"

namespace tabby {

struct FolderScanOptions {
  // File extensions taken as images, compared case-insensitively (".JPG" too).
  std::vector<std::string> extensions = image_extensions();
  // Descend into symlinked folders (and take symlinked class folders). Each
  // physical folder is walked at most once per class, so a symlink loop ends.
  // Symlinks to files are taken either way; dangling links are skipped with a warning.
  bool follow_symlinks = true;
  // Keras `class_names=`: the classes to take, in label order. Folders not listed
  // are skipped (with a warning); a listed class without a folder keeps its label
  // and gets no samples (warning) — evaluating a 2-class model on a folder holding
  // only one of them is legitimate. At least one listed class must have a folder.
  std::optional<std::vector<std::string>> class_names;
};

// Scans DIR/<class>/... into a Dataset.
// - Classes: the non-hidden sub-folders of DIR, sorted by name in byte order (what
//   Python's sorted(os.listdir()) gives for UTF-8 names); label = index.
// - Files directly inside DIR are ignored (as Keras does); their count is logged.
// - Files of a class: taken recursively, hidden files and folders (".*") skipped,
//   extension in `extensions`. Order, as Keras' walk: folders sorted by path, and
//   within a folder files sorted by name (byte order).
// - Sample order: class by class (label order), then the file order above.
// - One class is allowed (evaluation against class names from a run); whoever
//   trains checks for two or more.
// Errors (tabby::Error, naming the folder): DIR missing, not a folder or
// unreadable; no class sub-folders; a class folder with no image files; an
// unreadable folder anywhere below DIR. A bad `class_names` list (empty,
// duplicates) is a UsageError.
Dataset scan_folder(const std::filesystem::path& dir, const FolderScanOptions& options = {});

// Class sub-folder names of DIR (non-hidden folders, byte order), without
// looking inside them. Errors as scan_folder for a missing/unreadable DIR.
std::vector<std::string> list_class_folders(const std::filesystem::path& dir, bool follow_symlinks = true);

}  // namespace tabby
