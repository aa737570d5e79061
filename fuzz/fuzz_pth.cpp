// Fuzz target: the PyTorch .pth reader — zip archive parsing, the legacy
// stream format, and the restricted unpickler behind both.
//
// Input: byte 0 picks the mode, the rest is the payload.
//   even  the payload is a whole file (zip or legacy stream)
//   odd   the payload is the pickle alone: it is packed as archive/data.pkl
//         into a well-formed zip with a few storages (archive/data/0..3), so
//         mutations reach the unpickler instead of failing zip's CRC checks
// Property: whatever the reader accepts is self-consistent and survives
// serialize_pth + parse_pth unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "support/pth_writer.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/weights_file.h"
#include "tabby/weights/zip_archive.h"

namespace {

std::string zip_around_pickle(std::string_view pickle) {
  tabby::ZipWriter writer;
  writer.add("archive/data.pkl", pickle);
  writer.add("archive/byteorder", "little");
  // Storages of different sizes so that numel/offset checks have work to do.
  for (int key = 0; key < 4; ++key) {
    std::string storage(static_cast<size_t>(4 << (2 * key)), '\0');
    for (size_t i = 0; i < storage.size(); ++i) storage[i] = static_cast<char>(i * 31 + key);
    writer.add("archive/data/" + std::to_string(key), storage);
  }
  return writer.finish();
}

bool same_tensors(const tabby::RawTensorMap& a, const tabby::RawTensorMap& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second.dtype != ib->second.dtype || ia->second.shape != ib->second.shape ||
        ia->second.data != ib->second.data) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tabby::fuzz::silence_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tabby;
  const auto [mode, payload] = fuzz::split_mode(data, size);
  const std::string bytes = (mode & 1) ? zip_around_pickle(payload) : std::string(payload);
  (void)looks_like_pth(bytes);
  (void)detect_weights_format(bytes);

  RawTensorMap tensors;
  if (!fuzz::refuses_only_with_tabby_errors("parse_pth", [&] { tensors = parse_pth(bytes, "fuzz.pth"); })) return 0;
  for (const auto& [name, tensor] : tensors) {
    TABBY_FUZZ_CHECK(tensor.data.size() == tensor.expected_bytes(), "tensor '" + name + "' has the wrong byte count");
  }

  std::string written;
  const bool serialized =
      fuzz::refuses_only_with_tabby_errors("serialize_pth", [&] { written = serialize_pth(tensors); });
  TABBY_FUZZ_CHECK(serialized, "an accepted state dict could not be written back");
  TABBY_FUZZ_CHECK(looks_like_pth(written), "a written .pth is not recognised as one");
  RawTensorMap again;
  const bool reread =
      fuzz::refuses_only_with_tabby_errors("parse_pth (round trip)", [&] { again = parse_pth(written, "round-trip.pth"); });
  TABBY_FUZZ_CHECK(reread, "a .pth tabby wrote could not be read back");
  TABBY_FUZZ_CHECK(same_tensors(tensors, again), "tensors changed in a write + read round trip");
  return 0;
}
