// TFDS-style split specs: parsing, TFDS' boundary rounding, and resolution over
// split folders (rules documented in split_spec.h).
#include "tabby/dataset/split_spec.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <set>

#include "tabby/dataset/folder.h"
#include "tabby/dataset/shuffle.h"
#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/rng.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

constexpr const char* kSpecHint =
    "write SPLIT or SPLIT[FROM:TO] with percentages (train[:40%], train[40%:50%], train[-10%:]) "
    "or counts (train[:1000]); join several with '+'";
// What std::isspace calls space: a spec from a shell or a file may end in a newline.
constexpr std::string_view kSpace = " \t\n\v\f\r";

[[noreturn]] void bad_spec(const std::string& text, const std::string& why) {
  throw UsageError("bad split spec '" + text + "': " + why, kSpecHint);
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

struct Bound {
  std::optional<double> value;
  bool percent = false;
};

// One bound: empty, or [-]DIGITS[.DIGITS][%] with '_' allowed between digits
// (TFDS accepts 1_000). Parsed by hand: strtod would follow the C locale.
Bound parse_bound(const std::string& spec_text, const std::string& raw) {
  const std::string trimmed = util::trim(raw, kSpace);
  std::string s = trimmed;
  Bound bound;
  if (s.empty()) return bound;
  if (s.back() == '%') {
    bound.percent = true;
    s = util::trim(s.substr(0, s.size() - 1), kSpace);
  }
  size_t i = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) ++i;
  double whole = 0, fraction = 0, scale = 1;
  bool digits = false, in_fraction = false, has_point = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
      if (in_fraction) {
        scale /= 10;
        fraction += (c - '0') * scale;
      } else {
        whole = whole * 10 + (c - '0');
      }
    } else if (c == '_' && digits) {
      continue;
    } else if (c == '.' && !has_point) {
      has_point = in_fraction = true;
    } else {
      bad_spec(spec_text, "'" + trimmed + "' is not a number");
    }
  }
  if (!digits) bad_spec(spec_text, "'" + trimmed + "' is not a number");
  if (has_point && !bound.percent) bad_spec(spec_text, "a count must be a whole number, got '" + trimmed + "'");
  const double value = (whole + fraction) * (negative ? -1 : 1);
  if (bound.percent && std::fabs(value) > 100) bad_spec(spec_text, "percentages must be within -100% and 100%");
  bound.value = value;
  return bound;
}

}  // namespace

SplitSpec parse_split_spec(const std::string& input) {
  const std::string text = util::trim(input, kSpace);
  if (text.empty()) bad_spec(input, "it is empty");
  if (text.find('+') != std::string::npos) bad_spec(text, "use one split here, not several joined with '+'");
  size_t name_end = 0;
  while (name_end < text.size() && is_name_char(text[name_end])) ++name_end;
  SplitSpec spec;
  spec.text = text;
  spec.split = text.substr(0, name_end);
  if (spec.split.empty()) bad_spec(text, "it must start with a split name such as train");
  const std::string rest = text.substr(name_end);
  if (rest.empty()) return spec;
  if (rest.front() != '[' || rest.back() != ']') bad_spec(text, "expected NAME or NAME[FROM:TO]");
  const std::string inside = rest.substr(1, rest.size() - 2);
  const size_t colon = inside.find(':');
  if (colon == std::string::npos || inside.find(':', colon + 1) != std::string::npos) {
    bad_spec(text, "the brackets must hold FROM:TO (either may be left out), e.g. [:40%]");
  }
  const Bound from = parse_bound(text, inside.substr(0, colon));
  const Bound to = parse_bound(text, inside.substr(colon + 1));
  if (from.value && to.value && from.percent != to.percent) {
    bad_spec(text, "both bounds must be percentages or both counts");
  }
  spec.from = from.value;
  spec.to = to.value;
  spec.percent = from.percent || to.percent;
  if (spec.from && spec.to && ((*spec.from >= 0) == (*spec.to >= 0)) && *spec.from > *spec.to) {
    bad_spec(text, "it ends before it starts");
  }
  return spec;
}

std::vector<SplitSpec> parse_split_union(const std::string& text) {
  std::vector<SplitSpec> parts;
  size_t start = 0;
  for (;;) {
    const size_t plus = text.find('+', start);
    const std::string part = util::trim(text.substr(start, plus == std::string::npos ? std::string::npos : plus - start), kSpace);
    if (part.empty()) {
      const std::string whole = util::trim(text, kSpace);
      bad_spec(whole, whole.empty() ? "it is empty" : "an empty part around '+'");
    }
    parts.push_back(parse_split_spec(part));
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return parts;
}

SliceRange slice_range(const SplitSpec& spec, size_t n) {
  const auto count = static_cast<long long>(n);
  auto to_index = [&](double bound) -> long long {
    // std::nearbyint in the default rounding mode rounds halves to even, as Python's round().
    double position = spec.percent ? std::nearbyint(bound * static_cast<double>(n) / 100.0) : bound;
    // A count may be any size ("train[:10_000_000_000_000_000_000_000]"); past
    // either end it means the end, and only in range is the cast defined.
    position = std::clamp(position, -static_cast<double>(count), static_cast<double>(count));
    long long index = static_cast<long long>(position);
    if (index < 0) index = std::max(count + index, 0LL);
    return std::min(index, count);
  };
  const long long begin = spec.from ? to_index(*spec.from) : 0;
  const long long end = spec.to ? to_index(*spec.to) : count;
  if (begin > end) {
    throw UsageError(fmt::format("split spec '{}' ends before it starts on {} samples (from index {} to {})",
                                 spec.text, n, begin, end),
                     kSpecHint);
  }
  return {static_cast<size_t>(begin), static_cast<size_t>(end)};
}

std::vector<NamedSplit> list_splits(const fs::path& root) {
  const std::vector<std::string> children = list_class_folders(root);  // also checks ROOT
  const std::vector<std::string> extensions = FolderScanOptions{}.extensions;
  bool any_has_subfolders = false;
  for (const auto& child : children) {
    std::error_code ec;
    for (fs::directory_iterator it(root / child, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path& path = it->path();
      if (path.filename().native()[0] == '.') continue;
      std::error_code status_ec;
      if (fs::is_directory(path, status_ec)) {
        any_has_subfolders = true;
      } else if (std::find(extensions.begin(), extensions.end(), lower_extension(path)) != extensions.end()) {
        return {{"train", root}};  // a class folder: ROOT holds the classes
      }
    }
  }
  if (!any_has_subfolders) return {{"train", root}};
  std::vector<NamedSplit> splits;
  for (const auto& child : children) splits.push_back({child, root / child});
  return splits;
}

Dataset resolve_split(const fs::path& root, const std::string& spec_text) {
  const std::string spec = util::trim(spec_text, kSpace);
  const std::vector<NamedSplit> splits = list_splits(root);
  std::map<std::string, fs::path> folder_of;
  std::vector<std::string> names;
  for (const auto& s : splits) {
    folder_of[s.name] = s.folder;
    names.push_back(s.name);
  }
  // TFDS' reserved name "all": every split, whole (unless a folder is called "all").
  std::vector<SplitSpec> parts;
  for (SplitSpec& part : parse_split_union(spec_text)) {
    if (part.split != "all" || folder_of.count("all")) {
      parts.push_back(std::move(part));
      continue;
    }
    if (!part.whole()) {
      throw UsageError("split spec '" + part.text + "': 'all' cannot be sliced",
                       "slice the splits one by one, e.g. " + names.front() + "[:10%]");
    }
    for (const auto& name : names) parts.push_back(parse_split_spec(name));
  }
  for (const auto& part : parts) {
    if (!folder_of.count(part.split)) {
      throw UsageError(fmt::format("unknown split '{}' in '{}': '{}' has the split(s) {}", part.split, spec,
                                   root.string(), util::join(names)),
                       fmt::format("e.g. {}[:40%]", names.front()));
    }
  }

  // Labels shared by every split of ROOT, so separately resolved splits agree.
  std::optional<std::vector<std::string>> class_names;
  if (!(splits.size() == 1 && splits.front().folder == root)) {
    std::set<std::string> all;
    for (const auto& s : splits) {
      try {
        for (auto& c : list_class_folders(s.folder)) all.insert(std::move(c));
      } catch (const Error& e) {
        bool requested = false;
        for (const auto& part : parts) requested = requested || part.split == s.name;
        if (requested) throw;
        log::warnf("ignoring split folder '{}': {}", s.folder.string(), e.what());
      }
    }
    class_names = std::vector<std::string>(all.begin(), all.end());
  }

  std::map<std::string, Dataset> scanned;
  Dataset result;
  result.source = root.string() + " " + spec;
  for (const auto& part : parts) {
    auto found = scanned.find(part.split);
    if (found == scanned.end()) {
      FolderScanOptions options;
      options.class_names = class_names;
      found = scanned.emplace(part.split, scan_folder(folder_of.at(part.split), options)).first;
    }
    const Dataset& whole = found->second;
    if (result.class_names.empty()) result.class_names = whole.class_names;
    const size_t n = whole.samples.size();
    const std::vector<size_t> order =
        seeded_permutation(n, derive_seed(kSliceOrderSeed, {static_cast<uint64_t>(SeedPurpose::slice_order)}));
    const SliceRange range = slice_range(part, n);
    if (range.begin == range.end) {
      throw Error(fmt::format("split spec '{}' selects no samples (the split has {})", part.text, n),
                  "widen the slice");
    }
    std::vector<size_t> selected(order.begin() + static_cast<std::ptrdiff_t>(range.begin),
                                 order.begin() + static_cast<std::ptrdiff_t>(range.end));
    std::sort(selected.begin(), selected.end());
    for (size_t i : selected) result.samples.push_back(whole.samples[i]);
  }
  log::infof("Using {} files for '{}'.", result.samples.size(), spec);
  return result;
}

}  // namespace tabby
