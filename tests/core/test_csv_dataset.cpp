// CSV datasets: the RFC 4180 details real files have (quotes, CRLF, BOM),
// column aliases, path resolution, class names, and errors that name the line.
#include <gtest/gtest.h>

#include "tabby/dataset/csv.h"
#include "tabby/util/error.h"
#include "support/test_support.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;
using testing::write_bytes;

using testing::touch;

// Expects read_csv_dataset to fail with a message containing every part.
void expect_csv_error(const fs::path& csv, const std::vector<std::string>& parts,
                      const std::optional<std::vector<std::string>>& class_names = {}) {
  try {
    read_csv_dataset(csv, class_names);
    ADD_FAILURE() << "no error for " << csv;
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "'" << what << "' lacks '" << p << "'";
  }
}

TEST(ParseCsv, QuotesCrlfBomAndBlankLines) {
  const std::string text =
      "\xEF\xBB\xBFpath,label\r\n"
      "\"a,b.jpg\",cats\r\n"
      "\r\n"
      "\"say \"\"hi\"\".jpg\", dogs \r\n"
      "\"two\nlines.jpg\",cats\n"
      "plain.jpg,\"\"\n"
      "last.jpg,cats";  // no final newline
  const auto records = parse_csv(text, "t.csv");
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[0].fields, (std::vector<std::string>{"path", "label"}));
  EXPECT_EQ(records[0].line, 1u);
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"a,b.jpg", "cats"}));
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"say \"hi\".jpg", "dogs"}));  // unquoted field trimmed
  EXPECT_EQ(records[2].line, 4u);
  EXPECT_EQ(records[3].fields, (std::vector<std::string>{"two\nlines.jpg", "cats"}));
  EXPECT_EQ(records[3].line, 5u);
  EXPECT_EQ(records[4].fields, (std::vector<std::string>{"plain.jpg", ""}));
  EXPECT_EQ(records[4].line, 7u);  // the quoted line break counted
  EXPECT_EQ(records[5].fields, (std::vector<std::string>{"last.jpg", "cats"}));
  EXPECT_EQ(records[5].line, 8u);
}

TEST(ParseCsv, MalformedQuotesNameTheLine) {
  try {
    parse_csv("path,label\nok.jpg,a\n\"open.jpg,a\nmore\n", "t.csv");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'t.csv' line 3: a quoted field is never closed"), std::string::npos)
        << e.what();
  }
  try {
    parse_csv("path,label\n\"x.jpg\"y,a\n", "t.csv");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2: unexpected text after a closing quote"), std::string::npos)
        << e.what();
  }
}

TEST(CsvDataset, RelativePathsSortedLabelsRowOrder) {
  const fs::path dir = scratch_dir("csv_basic");
  touch(dir / "img" / "c1.jpg");
  touch(dir / "img" / "d1.jpg");
  touch(dir / "img" / "c 2.jpg");
  const fs::path elsewhere = scratch_dir("csv_basic_abs") / "abs.png";
  touch(elsewhere);
  write_bytes(dir / "list.csv",
              "id,path,label,notes\n"
              "1,img/d1.jpg,dogs,\"good, boy\"\n"
              "2,img/c1.jpg,cats,\n"
              "3,\"img/c 2.jpg\",cats,x\n"
              "4," + elsewhere.string() + ",dogs,absolute\n");
  const Dataset d = read_csv_dataset(dir / "list.csv");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cats", "dogs"}));
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d.samples[0].path, dir / "img" / "d1.jpg");
  EXPECT_EQ(d.samples[0].label, 1);
  EXPECT_EQ(d.samples[1].path, dir / "img" / "c1.jpg");
  EXPECT_EQ(d.samples[1].label, 0);
  EXPECT_EQ(d.samples[2].path, dir / "img" / "c 2.jpg");
  EXPECT_EQ(d.samples[3].path, elsewhere);
  EXPECT_EQ(d.class_counts(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(d.source, (dir / "list.csv").string());
}

TEST(CsvDataset, AlternativeColumnNamesCrlfAndBom) {
  const fs::path dir = scratch_dir("csv_aliases");
  touch(dir / "a.jpg");
  touch(dir / "b.jpg");
  write_bytes(dir / "one.csv", "\xEF\xBB\xBF" "Filename,Class\r\na.jpg,x\r\nb.jpg,y\r\n");
  write_bytes(dir / "two.csv", "image,category\na.jpg,x\n");
  write_bytes(dir / "three.csv", "file,label\nb.jpg,y\n");
  EXPECT_EQ(read_csv_dataset(dir / "one.csv").size(), 2u);
  EXPECT_EQ(read_csv_dataset(dir / "one.csv").class_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(read_csv_dataset(dir / "two.csv").samples.at(0).path, dir / "a.jpg");
  EXPECT_EQ(read_csv_dataset(dir / "three.csv").samples.at(0).path, dir / "b.jpg");
}

TEST(CsvDataset, IntegerLabelsSortNumerically) {
  const fs::path dir = scratch_dir("csv_numeric");
  std::string csv = "path,label\n";
  for (int label : {10, 2, 1, 9}) {
    touch(dir / (std::to_string(label) + ".jpg"));
    csv += std::to_string(label) + ".jpg," + std::to_string(label) + "\n";
  }
  write_bytes(dir / "n.csv", csv);
  const Dataset d = read_csv_dataset(dir / "n.csv");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"1", "2", "9", "10"}));
  EXPECT_EQ(d.samples[0].label, 3);  // "10"
}

TEST(CsvDataset, GivenClassNamesOrderLabels) {
  const fs::path dir = scratch_dir("csv_given");
  touch(dir / "a.jpg");
  touch(dir / "b.jpg");
  write_bytes(dir / "l.csv", "path,label\na.jpg,cats\nb.jpg,dogs\n");
  const Dataset d = read_csv_dataset(dir / "l.csv", std::vector<std::string>{"dogs", "cats", "birds"});
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"dogs", "cats", "birds"}));
  EXPECT_EQ(d.samples[0].label, 1);
  EXPECT_EQ(d.samples[1].label, 0);
  expect_csv_error(dir / "l.csv", {"line 3", "'dogs' is not one of the class names (cats, birds)"},
                   std::vector<std::string>{"cats", "birds"});
  EXPECT_THROW(read_csv_dataset(dir / "l.csv", std::vector<std::string>{"a", "a"}), UsageError);
}

TEST(CsvDataset, ErrorsNameTheLine) {
  const fs::path dir = scratch_dir("csv_errors");
  touch(dir / "img" / "ok.jpg");
  fs::create_directories(dir / "img" / "folder.jpg");

  write_bytes(dir / "missing.csv", "path,label\nimg/ok.jpg,a\nimg/x.jpg,b\nimg/y.jpg,b\nimg/z.jpg,b\n");
  expect_csv_error(dir / "missing.csv", {"missing.csv", "line 3: 'img/x.jpg' not found", "and 2 more missing files"});
  try {
    read_csv_dataset(dir / "missing.csv");
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find(dir.string()), std::string::npos) << e.hint();  // where relative paths point
  }

  write_bytes(dir / "fields.csv", "path,label\nimg/ok.jpg,a\nimg/ok.jpg,a,extra\n");
  expect_csv_error(dir / "fields.csv", {"line 3", "expected 2 fields", "found 3"});

  write_bytes(dir / "nolabel.csv", "path,label\nimg/ok.jpg,a\nimg/ok.jpg,\n");
  expect_csv_error(dir / "nolabel.csv", {"line 3", "label is empty"});

  write_bytes(dir / "nopath.csv", "path,label\n,a\n");
  expect_csv_error(dir / "nopath.csv", {"line 2", "path is empty"});

  write_bytes(dir / "columns.csv", "file_name,kind\nimg/ok.jpg,a\n");
  expect_csv_error(dir / "columns.csv", {"line 1", "no path column", "file_name, kind"});
  write_bytes(dir / "columns2.csv", "path,kind\nimg/ok.jpg,a\n");
  expect_csv_error(dir / "columns2.csv", {"line 1", "no label column", "label, class, category"});

  write_bytes(dir / "folder.csv", "path,label\nimg/folder.jpg,a\n");
  expect_csv_error(dir / "folder.csv", {"line 2", "is a folder"});

  write_bytes(dir / "empty.csv", "");
  expect_csv_error(dir / "empty.csv", {"empty.csv", "is empty"});
  write_bytes(dir / "header_only.csv", "path,label\r\n\r\n");
  expect_csv_error(dir / "header_only.csv", {"no rows"});

  write_bytes(dir / "quote.csv", "path,label\nimg/ok.jpg,a\n\"img/ok.jpg,a\n");
  expect_csv_error(dir / "quote.csv", {"line 3", "never closed"});

  expect_csv_error(dir / "nope.csv", {"nope.csv", "does not exist"});
  expect_csv_error(dir / "img", {"is a folder, not a CSV file"});
}

}  // namespace
}  // namespace tabby
