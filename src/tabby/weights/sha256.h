// SHA-256 checksums of downloads and weight files, by OpenSSL's libcrypto.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace tabby {

// Lower-case hex digest (64 characters) of a file's content, read in chunks;
// throws tabby::Error when the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

// Incremental hashing, for data that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  std::string hex_digest();  // lower-case hex (64 characters); finishes, call once

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tabby
