// A small zip reader for PyTorch's zip-format .pth files (internal to
// src/tabby/weights). It works on bytes already in memory and checks every size
// and offset against them: end-of-central-directory record (with a possible
// comment), ZIP64 records, central directory, local headers, and CRC-32 of each
// entry read. Entries may be stored or deflated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tabby::zip {

struct Entry {
  std::string name;
  uint64_t local_header_offset = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint32_t crc32 = 0;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint16_t flags = 0;
};

class Reader {
 public:
  // Parses the central directory of `archive`, which must outlive the reader.
  // Throws tabby::Error naming `source_name` when the archive is malformed.
  Reader(std::string_view archive, std::string source_name);

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(std::string_view name) const;

  // The entry's bytes, CRC-checked. Stored entries are returned as a view into
  // the archive; deflated ones are inflated into `buffer` and viewed there.
  std::string_view read(const Entry& entry, std::string& buffer) const;

 private:
  std::string_view archive_;
  std::string source_;
  std::vector<Entry> entries_;
};

// True when the bytes start like a zip archive ("PK\3\4", or "PK\5\6" for an
// empty one).
bool looks_like_zip(std::string_view bytes);

// CRC-32 (zip's polynomial) of bytes, via zlib.
uint32_t crc32_of(std::string_view bytes);

}  // namespace tabby::zip
