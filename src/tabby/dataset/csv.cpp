// CSV datasets: an RFC 4180 reader and the `path,label` interpretation on top.
#include "tabby/dataset/csv.h"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>
#include <map>
#include <set>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/util/log.h"
#include "tabby/util/text.h"

namespace tabby {

namespace {

constexpr const char* kHeaderHint = "the first row must be a header such as: path,label";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Column index of the first alias present in the header, or -1.
int find_column(const std::vector<std::string>& header, const std::vector<std::string>& aliases) {
  for (const auto& alias : aliases) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (lower(header[i]) == alias) return static_cast<int>(i);
    }
  }
  return -1;
}

bool is_integer(const std::string& s) {
  size_t start = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (s.size() == start || s.size() - start > 18) return false;
  return std::all_of(s.begin() + static_cast<std::ptrdiff_t>(start), s.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

// Sorted unique labels: numeric order when all are integers, else byte order.
std::vector<std::string> sorted_labels(const std::set<std::string>& unique) {
  std::vector<std::string> names(unique.begin(), unique.end());  // byte order
  if (std::all_of(names.begin(), names.end(), is_integer)) {
    std::stable_sort(names.begin(), names.end(),
                     [](const std::string& a, const std::string& b) { return std::stoll(a) < std::stoll(b); });
  }
  return names;
}

}  // namespace

std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& source_name) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> records;
  size_t line = 1;
  CsvRecord record{line, {}};
  std::string field;
  bool quoted = false;        // the current field was quoted
  bool in_quotes = false;     // inside "..."
  bool after_close = false;   // the closing quote of this field was seen
  size_t quote_line = 0;

  auto end_field = [&] {
    record.fields.push_back(quoted ? field : util::trim(field));
    field.clear();
    quoted = after_close = false;
  };
  // A line holding nothing is skipped; a line holding just "" is a record.
  auto end_record = [&] {
    const bool was_quoted = quoted;
    end_field();
    const bool blank = record.fields.size() == 1 && record.fields[0].empty() && !was_quoted;
    if (!blank) records.push_back(std::move(record));
    record = CsvRecord{line + 1, {}};
  };
  auto fail = [&](size_t at, const std::string& what) {
    throw Error(fmt::format("'{}' line {}: {}", source_name, at, what),
                "fields with commas, quotes or line breaks must be in double quotes, with \"\" for a quote");
  };

  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
          after_close = true;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == ',') {
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      end_record();
      ++line;
    } else if (after_close) {
      if (c != ' ' && c != '\t') fail(line, "unexpected text after a closing quote");
    } else if (c == '"' && util::trim(field).empty()) {
      in_quotes = quoted = true;
      quote_line = line;
      field.clear();
    } else {
      field += c;
    }
  }
  if (in_quotes) fail(quote_line, "a quoted field is never closed");
  if (!field.empty() || quoted || !record.fields.empty()) end_record();
  return records;
}

Dataset read_csv_dataset(const fs::path& csv, const std::optional<std::vector<std::string>>& class_names) {
  std::error_code ec;
  const fs::file_status status = fs::status(csv, ec);
  if (!fs::exists(status)) throw Error("CSV file '" + csv.string() + "' does not exist", "check the path");
  if (fs::is_directory(status)) {
    throw Error("'" + csv.string() + "' is a folder, not a CSV file",
                "give the CSV file, or use the folder itself as a dataset with one sub-folder per class");
  }
  const std::string name = csv.string();
  const std::vector<CsvRecord> records = parse_csv(read_file(csv), name);
  if (records.empty()) throw Error("'" + name + "' is empty", kHeaderHint);

  const CsvRecord& header = records.front();
  const std::vector<std::string> path_aliases = {"path", "filepath", "file_path", "filename", "file", "image", "image_path"};
  const std::vector<std::string> label_aliases = {"label", "class", "category"};
  const int path_column = find_column(header.fields, path_aliases);
  const int label_column = find_column(header.fields, label_aliases);
  if (path_column < 0 || label_column < 0) {
    throw Error(fmt::format("'{}' line {}: no {} column (expected one of: {}); the header has: {}", name, header.line,
                            path_column < 0 ? "path" : "label", util::join(path_column < 0 ? path_aliases : label_aliases),
                            util::join(header.fields)),
                kHeaderHint);
  }

  std::map<std::string, int> label_of;
  if (class_names) {
    if (class_names->empty()) throw UsageError("the list of class names is empty", "give at least one class name");
    for (size_t i = 0; i < class_names->size(); ++i) {
      if (!label_of.emplace((*class_names)[i], static_cast<int>(i)).second) {
        throw UsageError("class name '" + (*class_names)[i] + "' is listed twice");
      }
    }
  }

  const fs::path base = csv.parent_path();
  struct Row {
    fs::path path;
    std::string label;
  };
  std::vector<Row> rows;
  size_t missing = 0;
  std::string first_missing;
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& record = records[r];
    if (record.fields.size() != header.fields.size()) {
      throw Error(fmt::format("'{}' line {}: expected {} fields (as in the header), found {}", name, record.line,
                              header.fields.size(), record.fields.size()),
                  "quote fields that contain commas");
    }
    const std::string& relative = record.fields[static_cast<size_t>(path_column)];
    const std::string& label = record.fields[static_cast<size_t>(label_column)];
    if (relative.empty()) throw Error(fmt::format("'{}' line {}: the path is empty", name, record.line));
    if (label.empty()) throw Error(fmt::format("'{}' line {}: the label is empty", name, record.line));
    if (class_names && !label_of.count(label)) {
      throw Error(fmt::format("'{}' line {}: label '{}' is not one of the class names ({})", name, record.line, label,
                              util::join(*class_names)),
                  "fix the label, or use the class names the data was labelled with");
    }
    const fs::path path = base / relative;
    const fs::file_status file_status = fs::status(path, ec);
    if (!fs::exists(file_status)) {
      if (missing++ == 0) first_missing = fmt::format("line {}: '{}' not found", record.line, relative);
      continue;
    }
    if (fs::is_directory(file_status)) {
      throw Error(fmt::format("'{}' line {}: '{}' is a folder, not an image file", name, record.line, relative));
    }
    rows.push_back({path, label});
  }
  if (missing > 0) {
    throw Error(fmt::format("'{}' {}{}", name, first_missing,
                            missing > 1 ? fmt::format(" (and {} more missing files)", missing - 1) : ""),
                "relative paths are resolved against the CSV's folder '" + (base.empty() ? fs::path(".") : base).string() +
                    "'");
  }
  if (rows.empty()) throw Error("'" + name + "' has a header but no rows", "add one row per image: path,label");

  Dataset dataset;
  dataset.source = name;
  if (class_names) {
    dataset.class_names = *class_names;
  } else {
    std::set<std::string> unique;
    for (const Row& row : rows) unique.insert(row.label);
    dataset.class_names = sorted_labels(unique);
    for (size_t i = 0; i < dataset.class_names.size(); ++i) label_of[dataset.class_names[i]] = static_cast<int>(i);
  }
  dataset.samples.reserve(rows.size());
  for (Row& row : rows) dataset.samples.push_back({std::move(row.path), label_of.at(row.label)});
  log::infof("Found {} files belonging to {} classes in '{}'.", dataset.samples.size(), dataset.class_names.size(),
             name);
  return dataset;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace tabby
