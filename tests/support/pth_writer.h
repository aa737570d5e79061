// Writing PyTorch .pth files for tests and fuzz seeds: the zip format torch.save
// writes (stored entries whose data starts on 64-byte boundaries, a protocol-2
// pickle of an OrderedDict of tensors), so tabby's reader is tested against
// files with known contents beside the ones real torch.save made
// (tests/python/make_pth_fixtures.py). tabby itself never writes .pth files.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tabby/weights/raw_tensor.h"
#include "tabby/weights/zip_archive.h"

namespace tabby {

// Stored zip entries whose data starts on 64-byte boundaries, as torch.save writes them.
class ZipWriter {
 public:
  void add(const std::string& name, std::string_view data);
  // The finished archive (central directory and end record appended).
  std::string finish();

 private:
  std::string out_;
  std::vector<zip::Entry> entries_;
};

std::string serialize_pth(const RawTensorMap& tensors);

// Writes atomically (temporary file + rename).
void write_pth(const std::filesystem::path& path, const RawTensorMap& tensors);

}  // namespace tabby
