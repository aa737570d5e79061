// The command line on bad input: missing or empty data, unusable images, wrong
// flags and values, broken model files, corrupt weights and run folders. Each
// case runs the real binary and must end with a non-zero exit status and ONE
// `error:` line on stderr that names the problem: no crash, no abort, no
// uncaught exception, no C++ type names, no stack trace.
//
// Every run is tiny (a few 12x12 images, 16x16 inputs, one epoch) and bounded
// by `timeout` (120 s, far more than any case needs), so a hang fails the case
// instead of stalling the suite.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"
#include "support/image_encode.h"
#include "tabby/image/image.h"
#include "tabby/util/fs.h"
#include "support/pth_writer.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/safetensors.h"

namespace tabby {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using testing::lines_of;

// ---- running the binary ----------------------------------------------------------

// run_tabby under `timeout`: a hang shows as exit status 124/137.
CommandResult run_bounded(const std::vector<std::string>& args) {
  const char* bin = std::getenv("TABBY_BIN");
  std::string cmd = "timeout -s KILL 120 " + testing::shell_quote(bin ? bin : "tabby");
  for (const auto& a : args) cmd += " " + testing::shell_quote(a);
  return testing::run_command(cmd);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// What a crash, an escaped exception or a leaked implementation detail leaves
// on stderr.
const std::vector<std::string>& forbidden_in_stderr() {
  static const std::vector<std::string> words = {
      "terminate called", "Aborted", "Segmentation fault", "core dumped", "what():", "std::", "c10::",
      "CLI::", "nlohmann", "toml::", "basic_string", "Exception raised from", "frame #", "stack trace",
      "Traceback", "LibTorch:",  // main's wording for a c10::Error: "likely a bug in tabby"
  };
  return words;
}

// The case failed cleanly: exit 1 or 2, one `error:` line that mentions every
// one of `names` (case-insensitively), and nothing of forbidden_in_stderr().
void expect_one_clear_error(const CommandResult& r, const std::vector<std::string>& names, int exit_code = 0) {
  SCOPED_TRACE("stderr:\n" + r.err + "stdout:\n" + r.out);
  ASSERT_NE(r.exit_code, 124) << "timed out";
  ASSERT_NE(r.exit_code, 137) << "killed (timed out)";
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << "exit status " << r.exit_code;
  if (exit_code != 0) EXPECT_EQ(r.exit_code, exit_code);
  std::vector<std::string> errors;
  for (const std::string& line : lines_of(r.err)) {
    if (line.rfind("error:", 0) == 0) errors.push_back(line);
  }
  ASSERT_EQ(errors.size(), 1u) << "expected exactly one error: line";
  for (const std::string& name : names) {
    EXPECT_NE(lower(errors[0]).find(lower(name)), std::string::npos) << "the error does not mention '" << name << "'";
  }
  for (const std::string& word : forbidden_in_stderr()) {
    EXPECT_EQ(r.err.find(word), std::string::npos) << "stderr contains '" << word << "'";
  }
}

// ---- fixtures ----------------------------------------------------------------------

Image tiny_image(int seed) {
  Image image(12, 12);
  image.pixels = testing::test_pattern(12, 12, seed);
  return image;
}

// A model small enough that one epoch on 8 images takes a moment.
const char* const kCliErrorsModel = R"(name = "tiny"
[[layers]]
type = "Rescaling"
scale = 0.00392156862745098
[[layers]]
type = "Conv2D"
filters = 2
kernel_size = 3
activation = "relu"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
)";

// Shared by all cases: data folders of every kind, model files, and one real
// run trained once (the cases on runs, predict and weights need it).
class CliErrors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // ctest runs every case as its own process, several at once: each gets its own folder.
    root_ = new fs::path(testing::scratch_dir("cli_errors_" + std::to_string(::getpid())));
    const fs::path& r = *root_;
    for (int i = 0; i < 4; ++i) {
      testing::write_bytes(r / "data" / "cats" / ("c" + std::to_string(i) + ".png"), encode_png(tiny_image(i)));
      testing::write_bytes(r / "data" / "dogs" / ("d" + std::to_string(i) + ".jpg"), encode_jpeg(tiny_image(10 + i)));
    }
    testing::write_bytes(r / "empty-class" / "cats" / "c.png", encode_png(tiny_image(1)));
    fs::create_directories(r / "empty-class" / "dogs");
    for (const char* cls : {"cats", "dogs"}) {
      testing::write_bytes(r / "unusable" / cls / "cut.jpg", encode_jpeg(tiny_image(3)).substr(0, 60));
      testing::write_bytes(r / "unusable" / cls / "text.png", "not a picture\n");
      testing::write_bytes(r / "unusable" / cls / "zero.bmp", "");
    }
    fs::create_directories(r / "no-classes");
    testing::write_bytes(r / "no-classes" / "loose.png", encode_png(tiny_image(2)));

    testing::write_bytes(r / "tiny.toml", kCliErrorsModel);
    testing::write_bytes(r / "syntax.toml", "name = \"broken\"\n[[layers]\ntype = \"Dense\"\n");
    testing::write_bytes(r / "unknown-layer.toml", "[[layers]]\ntype = \"Conv9D\"\nfilters = 2\n");
    testing::write_bytes(r / "bad-key.toml", "[[layers]]\ntype = \"Conv2D\"\nfilterz = 2\nkernel_size = 3\n"
                                             "[[layers]]\ntype = \"GlobalAveragePooling2D\"\n"
                                             "[[layers]]\ntype = \"Dense\"\n");
    testing::write_bytes(r / "bad-value.toml", "[[layers]]\ntype = \"Conv2D\"\nfilters = \"many\"\nkernel_size = 3\n"
                                               "[[layers]]\ntype = \"GlobalAveragePooling2D\"\n"
                                               "[[layers]]\ntype = \"Dense\"\n");
    testing::write_bytes(r / "binary.toml", std::string("\x89PNG\r\n\x1A\n\0\0\0\x0DIHDR", 16));

    // Weights files: garbage, and real files cut short.
    RawTensor w;
    w.dtype = DType::F32;
    w.shape = {64, 64};
    w.data.assign(w.expected_bytes(), '\1');
    const std::string safetensors = serialize_safetensors({{"features.0.0.weight", w}});
    const std::string pth = serialize_pth({{"features.0.0.weight", w}});
    testing::write_bytes(r / "garbage.safetensors", "this is not a weights file at all\n");
    testing::write_bytes(r / "cut.safetensors", safetensors.substr(0, safetensors.size() / 2));
    testing::write_bytes(r / "cut.pth", pth.substr(0, pth.size() / 2));
    testing::write_bytes(r / "zero.pth", "");

    run_ok_ = new CommandResult(run_bounded(train({{"--out", (r / "run").string()}})));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
    delete run_ok_;
  }

  // `tabby train` on the tiny model and data, with `overrides` replacing the
  // flags of the same name or added (CLI11 refuses a flag given twice). An
  // empty value is a bare flag.
  using Flags = std::vector<std::pair<std::string, std::string>>;
  static std::vector<std::string> train(const Flags& overrides = {}) {
    Flags flags = {{"--model", (*root_ / "tiny.toml").string()},
                   {"--data", (*root_ / "data").string()},
                   {"--out", (*root_ / "out").string()},
                   {"--epochs", "1"},
                   {"--batch-size", "4"},
                   {"--image-size", "16"},
                   {"--device", "cpu"},
                   {"--threads", "1"},
                   {"--no-report", ""},
                   {"--overwrite", ""}};
    for (const auto& [name, value] : overrides) {
      auto it = std::find_if(flags.begin(), flags.end(), [&](const auto& f) { return f.first == name; });
      if (it != flags.end()) {
        it->second = value;
      } else {
        flags.emplace_back(name, value);
      }
    }
    std::vector<std::string> args = {"train"};
    for (const auto& [name, value] : flags) {
      args.push_back(name);
      if (!value.empty()) args.push_back(value);
    }
    return args;
  }
  static std::string path(const std::string& relative) { return (*root_ / relative).string(); }
  // The trained run, copied so that a case may damage its copy.
  static fs::path copy_of_run(const std::string& name) {
    const fs::path copy = *root_ / name;
    fs::remove_all(copy);
    fs::copy(*root_ / "run", copy, fs::copy_options::recursive);
    return copy;
  }
  void require_run() {
    if (run_ok_->exit_code != 0) {
      FAIL() << "training the tiny run failed (exit " << run_ok_->exit_code << "):\n" << run_ok_->err;
    }
  }

  static fs::path* root_;
  static CommandResult* run_ok_;
};

fs::path* CliErrors::root_ = nullptr;
CommandResult* CliErrors::run_ok_ = nullptr;

// ---- data -----------------------------------------------------------------------------

TEST_F(CliErrors, TrainingTheTinyRunWorks) { require_run(); }

TEST_F(CliErrors, MissingDataFolder) {
  const fs::path missing = *root_ / "no-such-folder";
  expect_one_clear_error(run_bounded(train({{"--data", missing.string()}})), {missing.string(), "does not exist"});
}

TEST_F(CliErrors, EmptyClassFolder) {
  expect_one_clear_error(run_bounded(train({{"--data", path("empty-class")}})), {"dogs", "no images"});
}

TEST_F(CliErrors, FolderWithoutClassFolders) {
  expect_one_clear_error(run_bounded(train({{"--data", path("no-classes")}})), {"no class sub-folders"});
}

TEST_F(CliErrors, FolderWithNoUsableImage) {
  const CommandResult r = run_bounded(train({{"--data", path("unusable")}}));
  expect_one_clear_error(r, {"could be decoded"});
}

// Broken files among good ones are skipped, counted and named; training goes on.
TEST_F(CliErrors, BrokenImagesAmongGoodOnesAreSkippedAndCounted) {
  const fs::path mixed = *root_ / "mixed";
  fs::copy(*root_ / "data", mixed, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::copy(*root_ / "unusable", mixed, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  const CommandResult r = run_bounded(train({{"--data", mixed.string()}}));
  SCOPED_TRACE("stderr:\n" + r.err);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("6 files could not be decoded and were skipped"), std::string::npos);
  EXPECT_NE(r.err.find("cut.jpg"), std::string::npos);
  for (const std::string& word : forbidden_in_stderr()) EXPECT_EQ(r.err.find(word), std::string::npos) << word;
}

TEST_F(CliErrors, DataIsAFile) {
  const fs::path file = *root_ / "tiny.toml";
  expect_one_clear_error(run_bounded(train({{"--data", file.string()}})), {file.string()});
}

// TFDS-style slices name splits of a folder; a CSV has none.
TEST_F(CliErrors, SplitSliceOfACsv) {
  const fs::path csv = *root_ / "labels.csv";
  testing::write_bytes(csv, "path,label\ndata/cats/c0.png,cats\ndata/dogs/d0.jpg,dogs\n");
  const CommandResult r = run_bounded(train({{"--data", csv.string()}, {"--split", "train[:50%]"}}));
  expect_one_clear_error(r, {csv.string(), "csv"}, 2);
  EXPECT_NE(r.err.find("--validation-split"), std::string::npos) << r.err;
}

// ---- flags ----------------------------------------------------------------------------

TEST_F(CliErrors, UnknownFlag) {
  expect_one_clear_error(run_bounded(train({{"--epochz", "3"}})), {"--epochz"}, 2);
}

TEST_F(CliErrors, UnknownCommand) {
  const CommandResult r = run_bounded({"trian", "--data", path("data")});
  expect_one_clear_error(r, {"trian"}, 2);
  EXPECT_NE(r.err.find("did you mean `tabby train`"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("evaluate"), std::string::npos) << "the commands are listed:\n" << r.err;
  expect_one_clear_error(run_bounded({"--quiet", "frobnicate"}), {"frobnicate"}, 2);
}

TEST_F(CliErrors, NegativeEpochs) { expect_one_clear_error(run_bounded(train({{"--epochs", "-1"}})), {"epochs"}); }

TEST_F(CliErrors, NonNumericEpochs) {
  expect_one_clear_error(run_bounded(train({{"--epochs", "ten"}})), {"epochs", "ten"}, 2);
}

TEST_F(CliErrors, ValidationSplitOutOfRange) {
  expect_one_clear_error(run_bounded(train({{"--validation-split", "2"}})), {"validation"});
}

TEST_F(CliErrors, ImageSizeZero) {
  expect_one_clear_error(run_bounded(train({{"--image-size", "0"}})), {"--image-size"}, 2);
}

TEST_F(CliErrors, BatchSizeZero) {
  expect_one_clear_error(run_bounded(train({{"--batch-size", "0"}})), {"batch"});
}

TEST_F(CliErrors, NegativeLearningRate) { expect_one_clear_error(run_bounded(train({{"--lr", "-1"}})), {"lr"}); }

TEST_F(CliErrors, UnknownOptimizer) {
  expect_one_clear_error(run_bounded(train({{"--optimizer", "adamx"}})), {"adamx"});
}

TEST_F(CliErrors, UnknownDevice) {
  expect_one_clear_error(run_bounded(train({{"--device", "tpu"}})), {"tpu"});
}

// ---- models ---------------------------------------------------------------------------

TEST_F(CliErrors, UnknownModelPreset) {
  expect_one_clear_error(run_bounded(train({{"--model", "tutorial-cnnn"}})), {"tutorial-cnnn"});
}

TEST_F(CliErrors, MissingModelFile) {
  const fs::path missing = *root_ / "missing.toml";
  expect_one_clear_error(run_bounded(train({{"--model", missing.string()}})), {missing.string()});
}

TEST_F(CliErrors, ModelTomlSyntaxError) {
  const fs::path file = *root_ / "syntax.toml";
  expect_one_clear_error(run_bounded(train({{"--model", file.string()}})), {file.string()});
}

TEST_F(CliErrors, ModelTomlUnknownLayer) {
  const fs::path file = *root_ / "unknown-layer.toml";
  expect_one_clear_error(run_bounded(train({{"--model", file.string()}})), {file.string(), "Conv9D"});
}

TEST_F(CliErrors, ModelTomlUnknownKey) {
  const fs::path file = *root_ / "bad-key.toml";
  expect_one_clear_error(run_bounded(train({{"--model", file.string()}})), {file.string(), "filterz"});
}

TEST_F(CliErrors, ModelTomlWrongValueType) {
  const fs::path file = *root_ / "bad-value.toml";
  expect_one_clear_error(run_bounded(train({{"--model", file.string()}})), {"filters"});
}

TEST_F(CliErrors, ModelFileIsBinary) {
  const fs::path file = *root_ / "binary.toml";
  expect_one_clear_error(run_bounded(train({{"--model", file.string()}})), {file.string()});
}

// ---- weights --------------------------------------------------------------------------

// --weights FILE for a backbone: the file is read before any image is decoded
// and before the run folder is made.
TEST_F(CliErrors, CorruptWeightsFiles) {
  for (const char* name : {"garbage.safetensors", "cut.safetensors", "cut.pth", "zero.pth", "missing.pth"}) {
    SCOPED_TRACE(name);
    const fs::path file = *root_ / name;
    const fs::path out = *root_ / (std::string("weights-run-") + name);
    const CommandResult r = run_bounded(
        train({{"--model", "mobilenet_v2"}, {"--weights", file.string()}, {"--image-size", "32"}, {"--out", out.string()}}));
    expect_one_clear_error(r, {file.string()});
    EXPECT_EQ(r.err.find("decoded and resized"), std::string::npos) << "images were decoded first:\n" << r.err;
    EXPECT_FALSE(fs::exists(out)) << "a run folder was left behind";
  }
}

// A run that fails before its first epoch (here: no usable image) says why in
// run.json, and the same command with good data may reuse its folder without
// --overwrite; a run with a finished epoch is never replaced silently.
TEST_F(CliErrors, RunThatFailedBeforeItsFirstEpochIsReplacedOnTheNextTry) {
  const fs::path out = *root_ / "failed-early";
  auto without_overwrite = [](std::vector<std::string> args) {
    args.erase(std::remove(args.begin(), args.end(), "--overwrite"), args.end());
    return args;
  };
  CommandResult r = run_bounded(without_overwrite(train({{"--data", path("unusable")}, {"--out", out.string()}})));
  expect_one_clear_error(r, {"could be decoded"});
  const std::string run_json = read_file(out / "run.json");
  EXPECT_NE(run_json.find("\"failed\""), std::string::npos) << run_json;
  EXPECT_NE(run_json.find("could be decoded"), std::string::npos) << run_json;

  r = run_bounded(without_overwrite(train({{"--out", out.string()}})));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("failed before finishing an epoch"), std::string::npos) << r.err;

  r = run_bounded(without_overwrite(train({{"--out", out.string()}})));
  expect_one_clear_error(r, {"already holds a run"}, 2);
}

// ---- runs -------------------------------------------------------------------------------

TEST_F(CliErrors, EvaluateAFolderThatIsNotARun) {
  const fs::path not_run = *root_ / "data";
  expect_one_clear_error(run_bounded({"evaluate", not_run.string(), "--data", not_run.string(), "--device", "cpu"}),
                         {not_run.string()});
}

TEST_F(CliErrors, EvaluateAMissingRun) {
  const fs::path missing = *root_ / "no-run";
  expect_one_clear_error(
      run_bounded({"evaluate", missing.string(), "--data", (*root_ / "data").string(), "--device", "cpu"}),
      {missing.string()});
}

TEST_F(CliErrors, EvaluateARunWithCorruptFiles) {
  require_run();
  struct Damage {
    std::string file;
    std::string bytes;  // written over the run's copy of `file`
  };
  const std::vector<Damage> damages = {
      {"weights.safetensors", "\x08\0\0\0\0\0\0\0{\"a\":1}"},
      {"weights.safetensors", ""},
      {"run.json", "{\"version\": "},
      {"model.toml", "[[layers]]\ntype = \"Dense\"\nunits = \"x\"\n"},
  };
  int n = 0;
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.file + " #" + std::to_string(n));
    const fs::path run = copy_of_run("damaged-run-" + std::to_string(n++));
    testing::write_bytes(run / damage.file, damage.bytes);
    expect_one_clear_error(
        run_bounded({"evaluate", run.string(), "--data", (*root_ / "data").string(), "--device", "cpu"}), {});
  }
  const fs::path run = copy_of_run("damaged-run-missing-weights");
  fs::remove(run / "weights.safetensors");
  expect_one_clear_error(run_bounded({"evaluate", run.string(), "--data", (*root_ / "data").string(), "--device", "cpu"}),
                         {"weights.safetensors"});
}

TEST_F(CliErrors, PredictAMissingFile) {
  require_run();
  const fs::path missing = *root_ / "missing.jpg";
  expect_one_clear_error(run_bounded({"predict", (*root_ / "run").string(), missing.string(), "--device", "cpu"}),
                         {missing.string()});
}

// A broken image among the inputs is reported on its own line and the exit
// status says something failed; the good images still get predictions.
TEST_F(CliErrors, PredictABrokenImage) {
  require_run();
  const fs::path broken = *root_ / "unusable" / "cats" / "cut.jpg";
  const fs::path good = *root_ / "data" / "cats" / "c0.png";
  const CommandResult r =
      run_bounded({"predict", (*root_ / "run").string(), good.string(), broken.string(), "--device", "cpu"});
  SCOPED_TRACE("stderr:\n" + r.err + "stdout:\n" + r.out);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(good.string()), std::string::npos);
  EXPECT_NE((r.out + r.err).find("truncated"), std::string::npos);
  for (const std::string& word : forbidden_in_stderr()) EXPECT_EQ(r.err.find(word), std::string::npos) << word;
}

TEST_F(CliErrors, PredictWithBatchSizeZero) {
  require_run();
  const fs::path good = *root_ / "data" / "cats" / "c0.png";
  expect_one_clear_error(
      run_bounded({"predict", (*root_ / "run").string(), good.string(), "--batch-size", "0", "--device", "cpu"}),
      {"batch"});
}

TEST_F(CliErrors, ResumeANonExistentRun) {
  const fs::path missing = *root_ / "never-trained";
  expect_one_clear_error(run_bounded({"train", "--resume", missing.string(), "--device", "cpu"}), {missing.string()});
}

TEST_F(CliErrors, ResumeAFolderThatIsNotARun) {
  const fs::path not_run = *root_ / "data";
  expect_one_clear_error(run_bounded({"train", "--resume", not_run.string(), "--device", "cpu"}), {not_run.string()});
}

// --out where a folder cannot be made: below a regular file (fails for every
// user, root included).
TEST_F(CliErrors, OutBelowARegularFile) {
  const fs::path out = *root_ / "tiny.toml" / "run";
  expect_one_clear_error(run_bounded(train({{"--out", out.string()}})), {out.string()});
}

// A disk that fills up between epochs: the resumed run's first write fails with one
// clear error, the last good checkpoint stays as it was (no temporary files
// left), and once space is freed --resume finishes the run. The small disk is a
// tmpfs; where mounting is not allowed the case is skipped.
TEST_F(CliErrors, FullDiskKeepsTheLastGoodCheckpoint) {
  require_run();
  const fs::path mnt = *root_ / "small-disk";
  fs::create_directories(mnt);
  const CommandResult m = testing::run_command("mount -t tmpfs -o size=2m tmpfs " + testing::shell_quote(mnt.string()) +
                                               " 2>&1");
  if (m.exit_code != 0) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << m.out;
  struct Unmount {
    fs::path p;
    ~Unmount() { testing::run_command("umount " + testing::shell_quote(p.string())); }
  } unmount{mnt};

  const fs::path run = mnt / "run";
  CommandResult r = run_bounded(train({{"--out", run.string()}, {"--epochs", "3"}, {"--stop-after", "1"}}));
  ASSERT_TRUE(fs::is_regular_file(run / "checkpoint.safetensors")) << r.err;
  const std::string checkpoint = read_file(run / "checkpoint.safetensors");

  // Fill the disk to the last byte.
  {
    std::FILE* filler = std::fopen((mnt / "filler").c_str(), "wb");
    ASSERT_NE(filler, nullptr);
    const std::string block(4096, 'x');
    while (std::fwrite(block.data(), 1, block.size(), filler) == block.size()) {
    }
    std::fclose(filler);
    std::FILE* byte = std::fopen((mnt / "filler-tail").c_str(), "wb");
    if (byte) {
      while (std::fputc('x', byte) != EOF && std::fflush(byte) == 0) {
      }
      std::fclose(byte);
    }
  }

  r = run_bounded({"train", "--resume", run.string(), "--device", "cpu", "--threads", "1"});
  expect_one_clear_error(r, {"cannot write", run.string()}, 1);
  EXPECT_NE(r.err.find("disk is full"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(run / "checkpoint.safetensors"), checkpoint) << "the last good checkpoint changed";
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos)
        << "temporary file left: " << entry.path();
  }

  fs::remove(mnt / "filler");
  fs::remove(mnt / "filler-tail");
  r = run_bounded({"train", "--resume", run.string(), "--device", "cpu", "--threads", "1", "--no-report"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_regular_file(run / "weights.safetensors"));
  EXPECT_EQ(lines_of(read_file(run / "history.csv")).size(), 4u);  // header + 3 epochs
}

// --out in a folder without write permission. Root writes anywhere: skipped.
TEST_F(CliErrors, UnwritableOut) {
  const fs::path locked = *root_ / "locked";
  fs::create_directories(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  struct Restore {
    fs::path p;
    ~Restore() { fs::permissions(p, fs::perms::owner_all); }
  } restore{locked};
  if (::access(locked.c_str(), W_OK) == 0) {
    GTEST_SKIP() << "permission bits are not enforced for this user (uid " << ::geteuid()
                 << ", root or CAP_DAC_OVERRIDE): no unwritable folder can be made";
  }
  const fs::path out = locked / "run";
  expect_one_clear_error(run_bounded(train({{"--out", out.string()}})), {out.string()});
}

}  // namespace
}  // namespace tabby
