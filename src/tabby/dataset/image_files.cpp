#include "tabby/dataset/image_files.h"

#include <algorithm>

#include "tabby/util/fs.h"

namespace tabby {

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = {".jpg", ".jpeg", ".png", ".bmp", ".gif"};
  return extensions;
}

bool has_image_extension(const std::filesystem::path& path) {
  const auto& all = image_extensions();
  return std::find(all.begin(), all.end(), lower_extension(path)) != all.end();
}

std::string image_extensions_text() {
  std::string out;
  for (const auto& e : image_extensions()) out += (out.empty() ? "" : " ") + e;
  return out;
}

}  // namespace tabby
