#include "tabby/weights/weights_file.h"

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/safetensors.h"

namespace tabby {

WeightsFormat detect_weights_format(const std::string& bytes) {
  // safetensors: an 8-byte length whose JSON header opens with '{' (the
  // reference writer never puts whitespace first). A .pth never starts with a
  // small little-endian length, so the two cannot be confused.
  if (bytes.size() >= 9 && bytes[8] == '{') {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
    if (n <= kMaxSafetensorsHeader) return WeightsFormat::Safetensors;
  }
  if (looks_like_pth(bytes)) return WeightsFormat::Pth;
  return WeightsFormat::Unknown;
}

RawTensorMap read_weights_file(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  switch (detect_weights_format(bytes)) {
    case WeightsFormat::Safetensors: return parse_safetensors(bytes, path.string()).tensors;
    case WeightsFormat::Pth: return parse_pth(bytes, path.string());
    case WeightsFormat::Unknown: break;
  }
  throw Error("'" + path.string() + "' is not a weights file tabby can read",
              "expected safetensors or a PyTorch .pth state dict (torch.save)");
}

}  // namespace tabby
