// Datasets from a CSV list of image files and their labels (the `path,label`
// files that notebooks write with pandas), and the small RFC 4180 reader behind it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tabby/dataset/dataset.h"

namespace tabby {

struct CsvRecord {
  size_t line = 0;  // 1-based physical line where the record starts
  std::vector<std::string> fields;
};

// RFC 4180: comma separated; a field may be quoted with '"', a quoted field may
// hold commas, line breaks and doubled quotes (""); records end with LF or CRLF.
// A leading UTF-8 byte-order mark is dropped. Unquoted fields are trimmed of
// spaces and tabs ("a.jpg, cats" works); quoted fields are kept verbatim. Blank
// lines are skipped. A quote left open, or text after a closing quote, is a
// tabby::Error naming `source_name` and the line.
std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& source_name);

// A CSV whose first row is a header naming the columns (case-insensitive):
//   path:  path, filepath, file_path, filename, file, image, image_path
//   label: label, class, category
// (first match in that order; other columns are ignored). Labels are class
// names. class_names = the given list, or the sorted unique labels (byte order;
// numeric order when every label is an integer, so "10" follows "9").
// Relative paths resolve against the CSV's folder. Samples keep the row order.
// Errors (tabby::Error, with the CSV's name and the line number): missing
// file, no header, no path or label column, a row with a different number of
// fields than the header, an empty path or label, a label outside the given
// class names, a listed file that does not exist or is not a file (the first
// one is named, with a count of the others), no rows at all.
Dataset read_csv_dataset(const std::filesystem::path& csv,
                         const std::optional<std::vector<std::string>>& class_names = {});

// One CSV field as written: quoted (quotes doubled) when it holds a comma, a
// quote or a line break, else as it is.
std::string csv_field(const std::string& text);

}  // namespace tabby
