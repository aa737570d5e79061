// The SHA-256 of a whole string, for tests that need the expected digest of
// bytes they made (tabby hashes files and streams: sha256_file_hex, Sha256).
#pragma once

#include <string>

namespace tabby::testing {

// Lower-case hex digest (64 characters).
std::string sha256_hex(const std::string& bytes);

}  // namespace tabby::testing
