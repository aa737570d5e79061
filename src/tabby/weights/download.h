// Downloading a file (pretrained weights) safely: into a temporary file beside
// the destination, checksummed while it arrives, renamed into place only when
// complete and verified. A failed or corrupt download leaves nothing behind.
#pragma once

#include <filesystem>
#include <string>

namespace tabby {

// Whether this build can download (it has libcurl).
bool download_supported();

// Downloads `url` (http or https, following redirects) into `dest`. When
// `sha256` is non-empty it is the expected hex digest, or a prefix of it of at
// least 8 digits (the torch.hub file-name convention); a mismatch deletes the
// temporary file and throws. HTTP errors (status >= 400), stalled transfers and
// network failures throw tabby::Error naming the URL. Progress goes to stderr
// for files over 1 MB.
void download_file(const std::string& url, const std::filesystem::path& dest, const std::string& sha256);

// True when `actual_hex` (a full digest) matches `expected` (full or a prefix of
// 8+ hex digits), ignoring case.
bool sha256_matches(const std::string& actual_hex, const std::string& expected);

}  // namespace tabby
