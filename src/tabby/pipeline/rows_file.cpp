#include "tabby/pipeline/rows_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
#include <jpeglib.h>
#include <nlohmann/json.hpp>
#include <png.h>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/sha256.h"

namespace tabby {

namespace {

constexpr char kMagic[8] = {'T', 'B', 'Y', 'R', 'O', 'W', 'S', '\0'};
constexpr uint64_t kFormatVersion = 1;
// Bumped whenever decoding or resizing changes a pixel for the same file.
constexpr int kPixelsVersion = 1;
constexpr const char* kFinishedSuffix = ".rows";
constexpr const char* kPartialSuffix = ".partial";

// The header's fields, little-endian uint64 after the magic.
struct RowsHeader {
  uint64_t version = kFormatVersion;
  uint64_t finished = 0;
  uint64_t files = 0, rows = 0, height = 0, width = 0;
  uint64_t metadata_offset = 0, metadata_length = 0;
};

std::string rows_errno_text() { return std::strerror(errno); }

std::string rows_host_name() {
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "host";
  std::string s(name);
  for (char& c : s) {
    if (c == '.' || c == '/') c = '_';
  }
  return s.empty() ? "host" : s;
}

std::string rows_decoders_version() {
  std::string v = fmt::format("pixels {} jpeg {}", kPixelsVersion, JPEG_LIB_VERSION);
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
  v += fmt::format(" turbo {}", LIBJPEG_TURBO_VERSION_NUMBER);
#endif
  v += fmt::format(" png {}", PNG_LIBPNG_VER);
  return v;
}

void write_rows_header(int fd, const RowsHeader& h, const fs::path& path) {
  uint8_t bytes[8 + 8 * 8] = {0};
  std::memcpy(bytes, kMagic, 8);
  const uint64_t fields[8] = {h.version, h.finished, h.files, h.rows, h.height, h.width, h.metadata_offset,
                              h.metadata_length};
  for (int i = 0; i < 8; ++i) {
    for (int b = 0; b < 8; ++b) bytes[8 + i * 8 + b] = static_cast<uint8_t>(fields[i] >> (8 * b));
  }
  if (::pwrite(fd, bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) {
    throw Error("could not write the image cache " + path.string() + ": " + rows_errno_text());
  }
}

std::optional<RowsHeader> read_rows_header(int fd) {
  uint8_t bytes[8 + 8 * 8] = {0};
  if (::pread(fd, bytes, sizeof(bytes), 0) != static_cast<ssize_t>(sizeof(bytes))) return std::nullopt;
  if (std::memcmp(bytes, kMagic, 8) != 0) return std::nullopt;
  uint64_t fields[8] = {0};
  for (int i = 0; i < 8; ++i) {
    for (int b = 0; b < 8; ++b) fields[i] |= static_cast<uint64_t>(bytes[8 + i * 8 + b]) << (8 * b);
  }
  return RowsHeader{fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[7]};
}

int64_t rows_row_bytes(int64_t height, int64_t width) { return height * width * 3; }

// The finished file's metadata, or a reason it cannot be used.
struct RowsFileRead {
  RowsHeader header;
  nlohmann::json metadata;
  uint64_t bytes = 0;
  std::string problem;
};

RowsFileRead read_finished_rows(int fd, const fs::path& path) {
  RowsFileRead r;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    r.problem = "cannot stat: " + rows_errno_text();
    return r;
  }
  r.bytes = static_cast<uint64_t>(st.st_size);
  auto h = read_rows_header(fd);
  if (!h) {
    r.problem = "not a tabby image cache (no header)";
    return r;
  }
  r.header = *h;
  if (h->version != kFormatVersion) {
    r.problem = fmt::format("written in format {}, this tabby reads {}", h->version, kFormatVersion);
    return r;
  }
  const uint64_t rows_end = kRowsHeaderBytes + h->rows * static_cast<uint64_t>(rows_row_bytes(h->height, h->width));
  if (h->finished != 1 || h->metadata_offset != rows_end || h->metadata_offset + h->metadata_length != r.bytes ||
      h->metadata_length > (uint64_t{1} << 31)) {
    r.problem = fmt::format("damaged: {} bytes where the header describes {}", r.bytes,
                            h->metadata_offset + h->metadata_length);
    return r;
  }
  std::string text(h->metadata_length, '\0');
  if (::pread(fd, text.data(), text.size(), static_cast<off_t>(h->metadata_offset)) !=
      static_cast<ssize_t>(text.size())) {
    r.problem = "damaged: its metadata cannot be read";
    return r;
  }
  try {
    r.metadata = nlohmann::json::parse(text);
  } catch (const std::exception&) {
    r.problem = "damaged: its metadata is not JSON";
  }
  (void)path;
  return r;
}

bool rows_writer_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

// "<key>.<host>.<pid>.partial" -> {host, pid}
std::pair<std::string, long> rows_partial_owner(const std::string& name) {
  const std::string stem = name.substr(0, name.size() - std::strlen(kPartialSuffix));
  const size_t last = stem.rfind('.');
  if (last == std::string::npos) return {"", 0};
  const size_t host_dot = stem.rfind('.', last - 1);
  if (host_dot == std::string::npos) return {"", 0};
  long pid = 0;
  try {
    pid = std::stol(stem.substr(last + 1));
  } catch (const std::exception&) {
    return {"", 0};
  }
  return {stem.substr(host_dot + 1, last - host_dot - 1), pid};
}

bool rows_name_ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

std::string pixels_key(const Dataset& dataset, int64_t height, int64_t width, bool crop_to_aspect) {
  Sha256 hash;
  hash.update(fmt::format("tabby rows {}; {}; {}x{}; crop {}; {} files\n", kFormatVersion, rows_decoders_version(), height,
                          width, crop_to_aspect ? 1 : 0, dataset.size()));
  for (const Sample& s : dataset.samples) {
    struct stat st {};
    if (::stat(s.path.c_str(), &st) != 0) {
      throw Error("cannot read " + s.path.string() + ": " + rows_errno_text(),
                  "the file was listed but is gone or unreadable; list the data again");
    }
    hash.update(s.path.native());
    hash.update(fmt::format("\t{}\t{}.{:09d}\n", static_cast<long long>(st.st_size),
                            static_cast<long long>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec)));
  }
  return hash.hex_digest().substr(0, 32);
}

std::optional<MappedRows> open_rows(const fs::path& dir, const std::string& key, int64_t files, int64_t height,
                                    int64_t width, std::string* problem) {
  const fs::path path = dir / (key + kFinishedSuffix);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  RowsFileRead r = read_finished_rows(fd, path);
  auto reject = [&](const std::string& why) -> std::optional<MappedRows> {
    ::close(fd);
    if (problem) *problem = why;
    return std::nullopt;
  };
  if (!r.problem.empty()) return reject(r.problem);
  const RowsHeader& h = r.header;
  if (static_cast<int64_t>(h.files) != files || static_cast<int64_t>(h.height) != height ||
      static_cast<int64_t>(h.width) != width || r.metadata.value("key", "") != key || h.rows == 0) {
    return reject("its header does not match the data it is named for");
  }
  MappedRows m;
  try {
    for (const auto& s : r.metadata.at("skipped")) {
      m.skipped.push_back(s.at(0).get<int64_t>());
      m.reasons.push_back(s.at(1).get<std::string>());
    }
  } catch (const std::exception&) {
    return reject("damaged: its list of skipped files cannot be read");
  }
  if (static_cast<int64_t>(m.skipped.size() + h.rows) != files) return reject("its row count does not add up");
  void* base = ::mmap(nullptr, r.bytes, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) {
    throw Error("cannot map the image cache " + path.string() + ": " + rows_errno_text(),
                "remove it with `tabby cache remove " + key + "`, or use --cache memory");
  }
  const size_t length = r.bytes;
  auto* rows = static_cast<uint8_t*>(base) + kRowsHeaderBytes;
  m.images = torch::from_blob(
      rows, {static_cast<int64_t>(h.rows), height, width, 3}, [base, length](void*) { ::munmap(base, length); },
      torch::TensorOptions().dtype(torch::kUInt8));
  m.path = path;
  m.file_bytes = r.bytes;
  // Its modification time is when it was last used: `tabby cache prune` removes the oldest first.
  ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  return m;
}

RowsWriter RowsWriter::create(const fs::path& dir, const std::string& key, int64_t files, int64_t height,
                              int64_t width) {
  ensure_directory(dir);
  RowsWriter w;
  w.dir_ = dir;
  w.partial_ = dir / partial_name(key);
  w.files_ = files;
  w.height_ = height;
  w.width_ = width;
  w.fd_ = ::open(w.partial_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w.fd_ < 0) {
    throw Error("cannot write the image cache in " + dir.string() + ": " + rows_errno_text(),
                "point --cache-dir (or TABBY_CACHE_DIR) at a writable folder, or use --cache memory");
  }
  const uint64_t size = kRowsHeaderBytes + static_cast<uint64_t>(files) * rows_row_bytes(height, width);
  // Reserved now, so a full disk shows before the decoding rather than as a crash halfway.
  const int rc = ::posix_fallocate(w.fd_, 0, static_cast<off_t>(size));
  if (rc != 0) {
    const std::string why = std::strerror(rc);
    w.abandon();
    throw Error(fmt::format("cannot reserve {:.1f} GB for the image cache in {}: {}", size / 1e9, dir.string(), why),
                "free disk space, point --cache-dir (or TABBY_CACHE_DIR) at a larger disk, or use --cache memory");
  }
  write_rows_header(w.fd_, RowsHeader{}, w.partial_);
  w.mapped_ = size;
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd_, 0);
  if (base == MAP_FAILED) {
    const std::string why = rows_errno_text();
    w.abandon();
    throw Error("cannot map the image cache being written in " + dir.string() + ": " + why);
  }
  w.base_ = static_cast<uint8_t*>(base);
  return w;
}

RowsWriter RowsWriter::attach(const fs::path& partial, int64_t files, int64_t height, int64_t width) {
  RowsWriter w;
  w.dir_ = partial.parent_path();
  w.partial_ = partial;
  w.files_ = files;
  w.height_ = height;
  w.width_ = width;
  w.fd_ = ::open(partial.c_str(), O_RDWR | O_CLOEXEC);
  if (w.fd_ < 0) throw Error("cannot open the image cache being written, " + partial.string() + ": " + rows_errno_text());
  w.mapped_ = kRowsHeaderBytes + static_cast<uint64_t>(files) * rows_row_bytes(height, width);
  void* base = ::mmap(nullptr, w.mapped_, PROT_READ | PROT_WRITE, MAP_SHARED, w.fd_, 0);
  if (base == MAP_FAILED) throw Error("cannot map the image cache being written, " + partial.string());
  w.base_ = static_cast<uint8_t*>(base);
  return w;
}

RowsWriter::RowsWriter(RowsWriter&& o) noexcept
    : dir_(std::move(o.dir_)),
      partial_(std::move(o.partial_)),
      fd_(o.fd_),
      base_(o.base_),
      mapped_(o.mapped_),
      files_(o.files_),
      height_(o.height_),
      width_(o.width_) {
  o.fd_ = -1;
  o.base_ = nullptr;
  o.mapped_ = 0;
}

void RowsWriter::unmap() {
  if (base_) ::munmap(base_, mapped_);
  base_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

RowsWriter::~RowsWriter() { unmap(); }

uint8_t* RowsWriter::row(int64_t index) const {
  return base_ + kRowsHeaderBytes + index * rows_row_bytes(height_, width_);
}

void RowsWriter::abandon() {
  unmap();
  std::error_code ec;
  if (!partial_.empty()) fs::remove(partial_, ec);
}

fs::path RowsWriter::finish(const std::string& key, const std::vector<int64_t>& skipped,
                            const std::vector<std::string>& reasons, const std::string& source, bool crop_to_aspect) {
  const int64_t rb = rows_row_bytes(height_, width_);
  // Rows of the files that decoded, closed up in dataset order.
  int64_t kept = 0;
  size_t next_skipped = 0;
  for (int64_t i = 0; i < files_; ++i) {
    if (next_skipped < skipped.size() && skipped[next_skipped] == i) {
      ++next_skipped;
      continue;
    }
    if (kept != i) std::memmove(row(kept), row(i), static_cast<size_t>(rb));
    ++kept;
  }
  nlohmann::json meta;
  meta["key"] = key;
  meta["source"] = source;
  meta["height"] = height_;
  meta["width"] = width_;
  meta["crop_to_aspect"] = crop_to_aspect;
  meta["files"] = files_;
  meta["rows"] = kept;
  meta["created"] = static_cast<int64_t>(std::time(nullptr));
  meta["skipped"] = nlohmann::json::array();
  for (size_t i = 0; i < skipped.size(); ++i) meta["skipped"].push_back({skipped[i], reasons[i]});
  const std::string text = meta.dump();

  RowsHeader h;
  h.files = static_cast<uint64_t>(files_);
  h.rows = static_cast<uint64_t>(kept);
  h.height = static_cast<uint64_t>(height_);
  h.width = static_cast<uint64_t>(width_);
  h.metadata_offset = kRowsHeaderBytes + static_cast<uint64_t>(kept) * static_cast<uint64_t>(rb);
  h.metadata_length = text.size();
  const fs::path final_path = dir_ / (key + kFinishedSuffix);
  auto failed = [&](const std::string& what) {
    const std::string why = rows_errno_text();
    abandon();
    throw Error("could not finish the image cache " + final_path.string() + ": " + what + ": " + why,
                "free disk space or point --cache-dir elsewhere, or use --cache memory");
  };
  if (::msync(base_, mapped_, MS_SYNC) != 0) failed("msync");
  ::munmap(base_, mapped_);
  base_ = nullptr;
  if (::ftruncate(fd_, static_cast<off_t>(h.metadata_offset + h.metadata_length)) != 0) failed("truncate");
  if (::pwrite(fd_, text.data(), text.size(), static_cast<off_t>(h.metadata_offset)) !=
      static_cast<ssize_t>(text.size())) {
    failed("metadata");
  }
  if (::fdatasync(fd_) != 0) failed("sync");
  // The header says "finished" only once everything before it is on disk.
  h.finished = 1;
  write_rows_header(fd_, h, partial_);
  if (::fdatasync(fd_) != 0) failed("sync");
  ::close(fd_);
  fd_ = -1;
  if (::rename(partial_.c_str(), final_path.c_str()) != 0) failed("rename");
  const int dir_fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  partial_.clear();
  return final_path;
}

RowsBuildLock::RowsBuildLock(const fs::path& dir, const std::string& key) {
  ensure_directory(dir);
  const fs::path path = dir / (key + ".lock");
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw Error("cannot write in the cache folder " + dir.string() + ": " + rows_errno_text(),
                "point --cache-dir (or TABBY_CACHE_DIR) at a writable folder, or use --cache memory");
  }
  while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
  }
}

RowsBuildLock::~RowsBuildLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

std::vector<RowsFileInfo> list_rows_files(const fs::path& dir) {
  std::vector<RowsFileInfo> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  const std::string here = rows_host_name();
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    RowsFileInfo info;
    info.path = entry.path();
    info.bytes = entry.is_regular_file(ec) ? static_cast<uint64_t>(entry.file_size(ec)) : 0;
    info.last_used = entry.last_write_time(ec);
    if (rows_name_ends_with(name, kFinishedSuffix)) {
      info.finished = true;
      info.key = name.substr(0, name.size() - std::strlen(kFinishedSuffix));
      const int fd = ::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        info.problem = "cannot be read: " + rows_errno_text();
      } else {
        RowsFileRead r = read_finished_rows(fd, entry.path());
        ::close(fd);
        info.problem = r.problem;
        if (r.problem.empty()) {
          info.rows = static_cast<int64_t>(r.header.rows);
          info.files = static_cast<int64_t>(r.header.files);
          info.height = static_cast<int64_t>(r.header.height);
          info.width = static_cast<int64_t>(r.header.width);
          info.source = r.metadata.value("source", "");
        }
      }
    } else if (rows_name_ends_with(name, kPartialSuffix)) {
      info.key = name.substr(0, name.find('.'));
      const auto [host, pid] = rows_partial_owner(name);
      info.writer_alive = host == here && rows_writer_alive(pid);
      // Another host's writer cannot be asked: count it as running.
      if (host != here) info.writer_alive = true;
    } else {
      continue;
    }
    out.push_back(std::move(info));
  }
  return out;
}

namespace {

// Maps `fd` (closed here) shared and writable as a tensor of `sizes`.
torch::Tensor map_tensor(int fd, const fs::path& path, const std::vector<int64_t>& sizes, torch::ScalarType dtype,
                         bool reserve) {
  uint64_t bytes = torch::elementSize(dtype);
  for (int64_t s : sizes) bytes *= static_cast<uint64_t>(s);
  const size_t length = std::max<uint64_t>(bytes, 1);
  if (reserve) {
    const int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(length));
    if (rc != 0) {
      ::close(fd);
      throw Error(fmt::format("cannot reserve {:.1f} GB in {}: {}", length / 1e9, path.parent_path().string(),
                              std::strerror(rc)),
                  "free disk space, or point --cache-dir (or TABBY_CACHE_DIR) at a larger disk");
    }
  }
  void* base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);  // the mapping keeps the file
  if (base == MAP_FAILED) throw Error("cannot map " + path.string() + ": " + rows_errno_text());
  return torch::from_blob(
      base, sizes, [base, length](void*) { ::munmap(base, length); }, torch::TensorOptions().dtype(dtype));
}

}  // namespace

torch::Tensor file_backed_tensor(const fs::path& dir, const std::vector<int64_t>& sizes, torch::ScalarType dtype) {
  ensure_directory(dir);
  std::string name = (dir / "scratch.XXXXXX").string();
  const int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    throw Error("cannot write in the cache folder " + dir.string() + ": " + rows_errno_text(),
                "point --cache-dir (or TABBY_CACHE_DIR) at a writable folder");
  }
  ::unlink(name.c_str());
  return map_tensor(fd, name, sizes, dtype, /*reserve=*/true);
}

torch::Tensor shared_file_tensor(const fs::path& path, const std::vector<int64_t>& sizes, torch::ScalarType dtype,
                                 bool create) {
  if (create) ensure_directory(path.parent_path());
  const int fd = create ? ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                        : ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw Error("cannot " + std::string(create ? "create " : "open ") + path.string() + ": " + rows_errno_text(),
                "point --cache-dir (or TABBY_CACHE_DIR) at a writable folder");
  }
  return map_tensor(fd, path, sizes, dtype, /*reserve=*/create);
}

std::string partial_name(const std::string& key) {
  return fmt::format("{}.{}.{}{}", key, rows_host_name(), static_cast<long>(::getpid()), kPartialSuffix);
}

int remove_abandoned_partials(const fs::path& dir) {
  int removed = 0;
  for (const RowsFileInfo& f : list_rows_files(dir)) {
    if (f.finished || f.writer_alive) continue;
    std::error_code ec;
    if (fs::remove(f.path, ec)) ++removed;
  }
  return removed;
}

}  // namespace tabby
