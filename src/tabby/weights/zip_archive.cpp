// Zip reading and writing, following PKWARE's APPNOTE. Every offset read from
// the archive is checked against the archive's size before use (`need`), with
// overflow-safe arithmetic, so a truncated or crafted archive is an Error.
#include "tabby/weights/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <limits>

#include "tabby/util/error.h"

namespace tabby::zip {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
// Deflate cannot expand more than about 1032:1; a larger claim is a lie.
constexpr uint64_t kMaxInflateRatio = 1100;

uint16_t le16(const char* p) {
  return static_cast<uint16_t>(static_cast<unsigned char>(p[0]) | (static_cast<unsigned char>(p[1]) << 8));
}
uint32_t le32(const char* p) { return le16(p) | (static_cast<uint32_t>(le16(p + 2)) << 16); }
uint64_t le64(const char* p) { return le32(p) | (static_cast<uint64_t>(le32(p + 4)) << 32); }

class Bounds {
 public:
  Bounds(std::string_view data, const std::string& source) : data_(data), source_(source) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw Error("'" + source_ + "' is not a valid zip archive: " + problem,
                "the file is damaged or truncated: download or save it again");
  }
  // Checks that [offset, offset + n) lies inside the data and returns a pointer to it.
  const char* need(uint64_t offset, uint64_t n, const char* what) const {
    if (offset > data_.size() || n > data_.size() - offset) {
      fail(std::string(what) + " lies outside the file (the file is truncated or corrupt)");
    }
    return data_.data() + offset;
  }

 private:
  std::string_view data_;
  const std::string& source_;
};

}  // namespace

bool looks_like_zip(std::string_view bytes) {
  return bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K' &&
         ((bytes[2] == 3 && bytes[3] == 4) || (bytes[2] == 5 && bytes[3] == 6));
}

uint32_t crc32_of(std::string_view bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const uInt n = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(p), n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

Reader::Reader(std::string_view archive, std::string source_name)
    : archive_(archive), source_(std::move(source_name)) {
  Bounds b(archive_, source_);
  const uint64_t size = archive_.size();
  if (size < kEndSize) b.fail("it is too short to hold a zip directory");

  // The end record sits at the very end, before a comment of up to 64 KiB.
  uint64_t end_pos = 0;
  bool found = false;
  const uint64_t lowest = size >= kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  for (uint64_t pos = size - kEndSize;; --pos) {
    const char* p = archive_.data() + pos;
    if (le32(p) == kEndSig && pos + kEndSize + le16(p + 20) <= size) {
      end_pos = pos;
      found = true;
      break;
    }
    if (pos == lowest) break;
  }
  if (!found) b.fail("no end-of-central-directory record (the file is truncated or not a zip)");

  const char* e = archive_.data() + end_pos;
  uint64_t total_entries = le16(e + 10);
  uint64_t cd_size = le32(e + 12);
  uint64_t cd_offset = le32(e + 16);
  const uint16_t disk = le16(e + 4), cd_disk = le16(e + 6);

  const bool has_locator = end_pos >= 20 && le32(archive_.data() + end_pos - 20) == kEnd64LocatorSig;
  const bool needs_zip64 = total_entries == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff;
  if (has_locator) {
    const uint64_t end64_pos = le64(archive_.data() + end_pos - 20 + 8);
    const char* e64 = b.need(end64_pos, 56, "the ZIP64 end record");
    if (le32(e64) != kEnd64Sig) b.fail("the ZIP64 end record has a bad signature");
    if (le32(e64 + 16) != 0 || le32(e64 + 20) != 0) b.fail("multi-part (split) archives are not supported");
    total_entries = le64(e64 + 32);
    cd_size = le64(e64 + 40);
    cd_offset = le64(e64 + 48);
  } else if (needs_zip64) {
    b.fail("it needs ZIP64 records but has none");
  } else if (disk != 0 || cd_disk != 0) {
    b.fail("multi-part (split) archives are not supported");
  }

  const char* cd = b.need(cd_offset, cd_size, "the central directory");
  if (total_entries > cd_size / kCentralSize) b.fail("the central directory is too small for its entry count");
  entries_.reserve(static_cast<size_t>(total_entries));

  uint64_t pos = 0;
  for (uint64_t i = 0; i < total_entries; ++i) {
    if (pos > cd_size || cd_size - pos < kCentralSize) b.fail("the central directory is truncated");
    const char* c = cd + pos;
    if (le32(c) != kCentralSig) b.fail("a central directory entry has a bad signature");
    Entry entry;
    entry.flags = le16(c + 8);
    entry.method = le16(c + 10);
    entry.crc32 = le32(c + 16);
    entry.compressed_size = le32(c + 20);
    entry.uncompressed_size = le32(c + 24);
    const uint16_t name_len = le16(c + 28), extra_len = le16(c + 30), comment_len = le16(c + 32);
    entry.local_header_offset = le32(c + 42);
    const uint64_t record = kCentralSize + name_len + extra_len + comment_len;
    if (cd_size - pos < record) b.fail("a central directory entry is truncated");
    entry.name.assign(c + kCentralSize, name_len);

    // ZIP64 extra field: 64-bit values for exactly those fields stored as 0xffffffff.
    const char* extra = c + kCentralSize + name_len;
    for (uint32_t x = 0; x + 4 <= extra_len;) {
      const uint16_t id = le16(extra + x), len = le16(extra + x + 2);
      if (x + 4 + len > extra_len) b.fail("entry '" + entry.name + "' has a malformed extra field");
      if (id == 0x0001) {
        const char* z = extra + x + 4;
        uint32_t used = 0;
        auto take = [&](uint64_t& field) {
          if (field != 0xffffffff) return;
          if (used + 8 > len) b.fail("entry '" + entry.name + "' has a truncated ZIP64 field");
          field = le64(z + used);
          used += 8;
        };
        take(entry.uncompressed_size);
        take(entry.compressed_size);
        take(entry.local_header_offset);
      }
      x += 4 + len;
    }
    entries_.push_back(std::move(entry));
    pos += record;
  }
}

const Entry* Reader::find(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string_view Reader::read(const Entry& entry, std::string& buffer) const {
  Bounds b(archive_, source_);
  const std::string what = "entry '" + entry.name + "'";
  const char* local = b.need(entry.local_header_offset, kLocalSize, "a local header");
  if (le32(local) != kLocalSig) b.fail(what + " has a bad local header signature");
  const uint16_t name_len = le16(local + 26), extra_len = le16(local + 28);
  const char* name = b.need(entry.local_header_offset + kLocalSize, name_len, "a local header name");
  if (std::string_view(name, name_len) != entry.name) b.fail(what + ": local header and directory disagree");
  const uint64_t data_offset = entry.local_header_offset + kLocalSize + name_len + extra_len;
  const char* data = b.need(data_offset, entry.compressed_size, (what + " data").c_str());
  if (entry.flags & 1) b.fail(what + " is encrypted");

  std::string_view result;
  if (entry.method == 0) {
    if (entry.compressed_size != entry.uncompressed_size) b.fail(what + " is stored but its two sizes differ");
    result = std::string_view(data, static_cast<size_t>(entry.compressed_size));
  } else if (entry.method == 8) {
    if (entry.uncompressed_size > entry.compressed_size * kMaxInflateRatio + 4096) {
      b.fail(what + " claims an impossible compression ratio");
    }
    buffer.clear();
    // Grow as data actually arrives instead of trusting the declared size.
    buffer.resize(static_cast<size_t>(std::min<uint64_t>(entry.uncompressed_size, 64u << 20)));
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error("zlib could not start inflating '" + source_ + "'");
    uint64_t in_left = entry.compressed_size;
    const char* in = data;
    size_t produced = 0;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      if (zs.avail_in == 0 && in_left > 0) {
        const uInt n = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
        zs.avail_in = n;
        in += n;
        in_left -= n;
      }
      if (produced > entry.uncompressed_size) {
        inflateEnd(&zs);
        b.fail(what + " inflates to more than its declared size");
      }
      if (produced == buffer.size()) {
        // One byte beyond the declared size lets an oversized stream show itself.
        buffer.resize(static_cast<size_t>(std::min<uint64_t>(entry.uncompressed_size + 1, produced * 2 + 4096)));
      }
      zs.next_out = reinterpret_cast<Bytef*>(&buffer[produced]);
      zs.avail_out = static_cast<uInt>(std::min<size_t>(buffer.size() - produced, 1u << 30));
      const uInt before = zs.avail_out;
      rc = inflate(&zs, Z_NO_FLUSH);
      produced += before - zs.avail_out;
      if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) {
        inflateEnd(&zs);
        b.fail(what + " ends in the middle of its compressed data");
      }
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
        inflateEnd(&zs);
        b.fail(what + " holds corrupt compressed data");
      }
    }
    inflateEnd(&zs);
    if (produced != entry.uncompressed_size) b.fail(what + " inflates to a size other than the one declared");
    buffer.resize(produced);
    result = buffer;
  } else {
    b.fail(what + " uses compression method " + std::to_string(entry.method) +
           " (only stored and deflated entries are supported)");
  }
  if (crc32_of(result) != entry.crc32) b.fail(what + " fails its CRC-32 check (the file is corrupt)");
  return result;
}

}  // namespace tabby::zip
