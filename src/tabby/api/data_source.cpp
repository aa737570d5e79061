#include "tabby/api/data_source.h"

#include "tabby/dataset/csv.h"
#include "tabby/dataset/folder.h"
#include "tabby/dataset/split.h"
#include "tabby/dataset/split_spec.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {

namespace {

bool is_csv(const std::string& path) { return lower_extension(path) == ".csv"; }

// Keeps the class list of `reference` (labels must agree across splits).
Dataset with_classes_of(const Dataset& reference, const std::string& path, const std::string& split) {
  return load_dataset(path, split, reference.class_names);
}

}  // namespace

Dataset load_dataset(const std::string& path, const std::string& split,
                     const std::optional<std::vector<std::string>>& class_names) {
  if (path.empty()) throw UsageError("no data given", "pass --data DIR (one sub-folder per class) or a CSV file");
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw UsageError("data path '" + path + "' does not exist", "check the path given to --data / --val / --test");
  }
  if (!split.empty()) {
    if (is_csv(path)) {
      throw UsageError("split slices like '" + split + "' apply to a folder of splits; '" + path + "' is a CSV file",
                       "with a CSV, hold out data with --validation-split and --test-fraction (stratified)");
    }
    Dataset d = resolve_split(path, split);
    if (!class_names) return d;
    // Re-label to the given class order.
    Dataset out;
    out.class_names = *class_names;
    out.source = d.source;
    for (const auto& s : d.samples) {
      const std::string& name = d.class_names[s.label];
      auto it = std::find(class_names->begin(), class_names->end(), name);
      if (it == class_names->end()) {
        throw Error("class '" + name + "' of " + d.source + " is not one of the model's classes");
      }
      out.samples.push_back({s.path, static_cast<int>(it - class_names->begin())});
    }
    return out;
  }
  if (is_csv(path)) return read_csv_dataset(path, class_names);
  FolderScanOptions options;
  options.class_names = class_names;
  return scan_folder(path, options);
}

void require_trainable(const Dataset& d) {
  if (d.class_names.size() < 2) {
    throw UsageError("training needs at least 2 classes, " + d.source + " has " + std::to_string(d.class_names.size()),
                     "put each class's images in its own sub-folder");
  }
  auto counts = d.class_counts();
  for (size_t k = 0; k < counts.size(); ++k) {
    if (counts[k] == 0) {
      throw UsageError("class '" + d.class_names[k] + "' has no images in " + d.source,
                       "add images to it or remove the empty folder");
    }
  }
}

namespace {

void check_data_args(const DataArgs& a) {
  const int val_ways = !a.val.empty() + !a.val_split.empty() + (a.validation_split > 0);
  const int test_ways = !a.test.empty() + !a.test_split.empty() + (a.test_fraction > 0);
  if (val_ways > 1) throw UsageError("give only one of --val, --val-split and --validation-split");
  if (test_ways > 1) throw UsageError("give only one of --test, --test-split and --test-fraction");
  if ((!a.val_split.empty() || !a.test_split.empty()) && a.split.empty()) {
    throw UsageError("--val-split / --test-split need --split for the training part",
                     "e.g. --data ROOT --split 'train[:40%]' --val-split 'train[40%:50%]'");
  }
}

// --validation-split / --test-fraction: parts of `all`, seeded (stratified for CSV files or on request).
void split_fractions(const Dataset& all, const DataArgs& a, ResolvedData& r) {
  const bool stratified = a.stratify || is_csv(a.data);
  if (stratified) {
    auto parts = split_stratified(all, a.validation_split, a.test_fraction, a.seed);
    r.train = parts.train;
    if (a.validation_split > 0) r.validation = parts.validation;
    if (a.test_fraction > 0) r.test = parts.test;
  } else {
    Dataset rest = all;
    if (a.test_fraction > 0) {
      auto t = split_validation(rest, a.test_fraction, a.seed ^ 0x54455354ULL);
      rest = t.train;
      r.test = t.validation;
    }
    if (a.validation_split > 0) {
      auto v = split_validation(rest, a.validation_split, a.seed);
      r.train = v.train;
      r.validation = v.validation;
    } else {
      r.train = rest;
    }
  }
  if (a.validation_split > 0) r.description["validation_split"] = a.validation_split;
  if (a.test_fraction > 0) r.description["test_fraction"] = a.test_fraction;
  r.description["stratified"] = stratified;
  r.description["split_seed"] = a.seed;
}

// --val / --val-split / --test / --test-split: other folders, CSV files or slices, with the training classes.
void add_named_parts(const DataArgs& a, ResolvedData& r) {
  if (!a.val.empty()) {
    r.validation = with_classes_of(r.train, a.val, "");
    r.description["val"] = a.val;
  } else if (!a.val_split.empty()) {
    r.validation = with_classes_of(r.train, a.data, a.val_split);
    r.description["val_split"] = a.val_split;
  }
  if (!a.test.empty()) {
    r.test = with_classes_of(r.train, a.test, "");
    r.description["test"] = a.test;
  } else if (!a.test_split.empty()) {
    r.test = with_classes_of(r.train, a.data, a.test_split);
    r.description["test_split"] = a.test_split;
  }
}

}  // namespace

ResolvedData resolve_data(const DataArgs& a) {
  check_data_args(a);
  ResolvedData r;
  Dataset all = load_dataset(a.data, a.split, a.class_names);
  r.description = {{"data", a.data}};
  if (!a.split.empty()) r.description["split"] = a.split;
  if (a.validation_split > 0 || a.test_fraction > 0) {
    split_fractions(all, a, r);
  } else {
    r.train = std::move(all);
  }
  add_named_parts(a, r);
  return r;
}

}  // namespace tabby
