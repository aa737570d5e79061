#include "test_support.h"

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tabby/util/fs.h"
#include "tabby/weights/safetensors.h"

namespace tabby::testing {

namespace {

// Fills in the test settings that the environment does not give.
struct DefaultSettings {
  DefaultSettings() {
    ::setenv("TABBY_SHARED", TABBY_TEST_DEFAULT_SHARED, 0);
    ::setenv("TABBY_TEST_TMP", TABBY_TEST_DEFAULT_TMP, 0);
    ::setenv("TABBY_BIN", TABBY_TEST_DEFAULT_BIN, 0);
    ::setenv("TABBY_PYTHON", TABBY_TEST_DEFAULT_PYTHON, 0);
    ::setenv("TABBY_SOURCE_DIR", TABBY_SOURCE_DIR, 0);
    ::setenv("TABBY_PYTOOLS", TABBY_TEST_DEFAULT_PYTOOLS, 0);
  }
} const default_settings;

}  // namespace

fs::path scratch_dir(const std::string& name) {
  const char* root = std::getenv("TABBY_TEST_TMP");
  fs::path base = root ? fs::path(root) : fs::temp_directory_path() / "tabby-tests";
  fs::path dir = base / name;
  std::error_code ec;
  // Tests may make unreadable files; restore permissions so removal works.
  if (fs::exists(dir, ec)) {
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  return dir;
}

std::optional<fs::path> shared_dir() {
  std::vector<fs::path> candidates;
  if (const char* v = std::getenv("TABBY_SHARED")) candidates.emplace_back(v);
  candidates.emplace_back("../shared");
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_directory(c / "datasets", ec)) return fs::weakly_canonical(fs::absolute(c));
  }
  return std::nullopt;
}

std::string shell_quote(const std::string& arg) {
  std::string q = "'";
  for (char c : arg) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

CommandResult run_command(const std::string& command_line) {
  static int counter = 0;
  fs::path dir = fs::temp_directory_path();
  std::string tag = std::to_string(::getpid()) + "-" + std::to_string(counter++);
  fs::path out = dir / ("tabby-out-" + tag), err = dir / ("tabby-err-" + tag);
  std::string full = "(" + command_line + ") >" + shell_quote(out.string()) + " 2>" + shell_quote(err.string());
  int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  r.out = slurp(out);
  r.err = slurp(err);
  std::error_code ec;
  fs::remove(out, ec);
  fs::remove(err, ec);
  return r;
}

CommandResult run_tabby(const std::vector<std::string>& args,
                        const std::vector<std::pair<std::string, std::string>>& environment) {
  const char* bin = std::getenv("TABBY_BIN");
  std::string cmd;
  if (!environment.empty()) {
    cmd = "env";
    for (const auto& [name, value] : environment) cmd += " " + shell_quote(name + "=" + value);
    cmd += " ";
  }
  cmd += shell_quote(bin ? bin : "tabby");
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_command(cmd);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> test_pattern(int width, int height, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(width) * height * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &px[(static_cast<size_t>(y) * width + x) * 3];
      p[0] = static_cast<uint8_t>((x * 255) / std::max(1, width - 1));
      p[1] = static_cast<uint8_t>((y * 255) / std::max(1, height - 1));
      p[2] = static_cast<uint8_t>((seed * 53 + (x + y) * 7) & 0xff);
    }
  }
  return px;
}

std::string describe(const CommandResult& result) {
  return "exit " + std::to_string(result.exit_code) + "\nstdout:\n" + result.out + "\nstderr:\n" + result.err;
}

void touch(const fs::path& path) { write_bytes(path, "x"); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

nlohmann::json read_json(const fs::path& file) { return nlohmann::json::parse(read_file(file)); }

void expect_same_tensors(const fs::path& a, const fs::path& b) {
  const RawTensorMap ta = read_safetensors(a).tensors, tb = read_safetensors(b).tensors;
  ASSERT_EQ(ta.size(), tb.size()) << a << " and " << b;
  for (const auto& [name, t] : ta) {
    const auto it = tb.find(name);
    ASSERT_NE(it, tb.end()) << name << " is in " << a << " but not in " << b;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_TRUE(t.data == it->second.data) << "tensor " << name << " differs between " << a << " and " << b;
  }
}

}  // namespace tabby::testing
