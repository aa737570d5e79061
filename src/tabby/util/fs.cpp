#include "tabby/util/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "tabby/util/error.h"

namespace tabby {

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error("'" + path.string() + "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error("cannot open '" + path.string() + "': " + std::strerror(errno),
                "check that the path exists and is readable");
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path.string() + "': " + std::strerror(errno));
  return std::move(buffer).str();
}

namespace {

std::string errno_hint(int err) {
  if (err == ENOSPC || err == EDQUOT) return "the disk is full: free some space and run again";
  if (err == EACCES || err == EPERM || err == EROFS) return "the folder is not writable: choose another output folder";
  return {};
}

[[noreturn]] void fail_write(const fs::path& path, int err) {
  throw Error("cannot write '" + path.string() + "': " + std::strerror(err), errno_hint(err));
}

}  // namespace

void write_file_atomic(const fs::path& path, std::string_view data) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::random_device rd;
  const fs::path tmp = dir / ("." + path.filename().string() + ".tmp" + std::to_string(rd() % 1000000));

  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_write(path, errno);
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail_write(path, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  // Delayed allocation can report a full disk only here.
  const int sync_err = ::fsync(fd) != 0 ? errno : 0;
  const int close_err = ::close(fd) != 0 ? errno : 0;
  if (sync_err != 0 || close_err != 0) {
    ::unlink(tmp.c_str());
    fail_write(path, sync_err != 0 ? sync_err : close_err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail_write(path, err);
  }
  // Make the rename itself durable.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void ensure_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  if (fs::exists(dir, ec)) throw Error("'" + dir.string() + "' exists and is not a folder");
  fs::create_directories(dir, ec);
  if (ec) {
    throw Error("cannot create folder '" + dir.string() + "': " + ec.message(), errno_hint(ec.value()));
  }
}

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace tabby
