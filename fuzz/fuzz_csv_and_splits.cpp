// Fuzz target: the small text parsers of the dataset layer — the RFC 4180 CSV
// reader, CSV dataset lists (header aliases, labels, relative paths) and
// TFDS-style split specs with their slice arithmetic.
//
// Input: byte 0 picks the mode, the rest is the text.
//   mode % 3 == 0  parse_csv; accepted records must survive being written back
//                  (every field quoted) and parsed again unchanged
//   mode % 3 == 1  parse_split_union; every slice of every size must give
//                  begin <= end <= n, and slices of fixed sizes are checked
//   mode % 3 == 2  read_csv_dataset on the text written to a file next to a
//                  few real files (bit 3 of the mode: with class names)
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_support.h"
#include "tabby/dataset/csv.h"
#include "tabby/dataset/split_spec.h"

namespace {

namespace fs = std::filesystem;

std::string quote_all(const std::vector<tabby::CsvRecord>& records) {
  std::string out;
  for (const auto& record : records) {
    for (size_t i = 0; i < record.fields.size(); ++i) {
      if (i) out += ',';
      out += '"';
      for (char c : record.fields[i]) out += c == '"' ? std::string("\"\"") : std::string(1, c);
      out += '"';
    }
    out += "\r\n";
  }
  return out;
}

void check_csv(const std::string& text) {
  std::vector<tabby::CsvRecord> records;
  if (!tabby::fuzz::refuses_only_with_tabby_errors("parse_csv", [&] { records = tabby::parse_csv(text, "fuzz.csv"); })) {
    return;
  }
  size_t last_line = 0;
  for (const auto& record : records) {
    TABBY_FUZZ_CHECK(record.line >= 1 && record.line > last_line, "record line numbers must increase");
    TABBY_FUZZ_CHECK(!record.fields.empty(), "a record without fields");
    last_line = record.line;
  }
  std::vector<tabby::CsvRecord> again;
  const bool reread = tabby::fuzz::refuses_only_with_tabby_errors(
      "parse_csv (round trip)", [&] { again = tabby::parse_csv(quote_all(records), "round-trip.csv"); });
  TABBY_FUZZ_CHECK(reread, "a fully quoted CSV could not be parsed");
  TABBY_FUZZ_CHECK(again.size() == records.size(), "record count changed when re-quoted");
  for (size_t r = 0; r < records.size(); ++r) {
    TABBY_FUZZ_CHECK(again[r].fields == records[r].fields, "fields changed when re-quoted");
  }
}

void check_splits(const std::string& text) {
  std::vector<tabby::SplitSpec> specs;
  if (!tabby::fuzz::refuses_only_with_tabby_errors("parse_split_union",
                                                   [&] { specs = tabby::parse_split_union(text); })) {
    return;
  }
  TABBY_FUZZ_CHECK(!specs.empty(), "an accepted split spec holds no slices");
  for (const auto& spec : specs) {
    TABBY_FUZZ_CHECK(!spec.split.empty(), "a slice without a split name");
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, size_t{12345}}) {
      tabby::SliceRange range;
      if (tabby::fuzz::refuses_only_with_tabby_errors("slice_range", [&] { range = tabby::slice_range(spec, n); })) {
        TABBY_FUZZ_CHECK(range.begin <= range.end && range.end <= n, "slice range outside [0, n]");
      }
    }
  }
}

// A folder per fuzzing process with the files a CSV may name.
const fs::path& csv_folder() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("tabby-fuzz-csv-" + std::to_string(::getpid()));
    fs::create_directories(d / "sub");
    for (const char* name : {"a.jpg", "b.png", "sub/c.jpg"}) std::ofstream(d / name) << "x";
    return d;
  }();
  return dir;
}

void check_csv_dataset(const std::string& text, bool with_class_names) {
  const fs::path csv = csv_folder() / "list.csv";
  {
    std::ofstream out(csv, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  std::optional<std::vector<std::string>> class_names;
  if (with_class_names) class_names = std::vector<std::string>{"cats", "dogs", "10"};
  tabby::Dataset dataset;
  if (!tabby::fuzz::refuses_only_with_tabby_errors("read_csv_dataset",
                                                   [&] { dataset = tabby::read_csv_dataset(csv, class_names); })) {
    return;
  }
  TABBY_FUZZ_CHECK(!dataset.empty() && !dataset.class_names.empty(), "accepted an empty CSV dataset");
  for (const auto& sample : dataset.samples) {
    TABBY_FUZZ_CHECK(sample.label >= 0 && static_cast<size_t>(sample.label) < dataset.class_names.size(),
                     "label index out of range");
  }
  const auto counts = dataset.class_counts();
  TABBY_FUZZ_CHECK(counts.size() == dataset.class_names.size(), "class_counts has the wrong length");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tabby::fuzz::silence_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [mode, payload] = tabby::fuzz::split_mode(data, size);
  const std::string text(payload);
  switch (mode % 3) {
    case 0: check_csv(text); break;
    case 1: check_splits(text); break;
    default: check_csv_dataset(text, (mode & 8) != 0); break;
  }
  return 0;
}
