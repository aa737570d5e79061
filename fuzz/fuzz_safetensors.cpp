// Fuzz target: the safetensors reader (header length, JSON header, dtypes,
// shapes, offsets), and the format detection the weights loader runs first.
//
// Property: whatever the reader accepts is self-consistent (each tensor's data
// is exactly numel x element size) and survives a write + read round trip
// unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "tabby/weights/safetensors.h"
#include "tabby/weights/weights_file.h"

namespace {

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
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)detect_weights_format(bytes);

  SafetensorsFile file;
  if (!fuzz::refuses_only_with_tabby_errors("parse_safetensors",
                                            [&] { file = parse_safetensors(bytes, "fuzz.safetensors"); })) {
    return 0;
  }
  for (const auto& [name, tensor] : file.tensors) {
    TABBY_FUZZ_CHECK(tensor.data.size() == tensor.expected_bytes(), "tensor '" + name + "' has the wrong byte count");
  }

  std::string written;
  const bool serialized = fuzz::refuses_only_with_tabby_errors(
      "serialize_safetensors", [&] { written = serialize_safetensors(file.tensors, file.metadata); });
  TABBY_FUZZ_CHECK(serialized, "an accepted file could not be written back");
  TABBY_FUZZ_CHECK(detect_weights_format(written) == WeightsFormat::Safetensors,
                   "a written file is not detected as safetensors");
  SafetensorsFile again;
  const bool reread = fuzz::refuses_only_with_tabby_errors(
      "parse_safetensors (round trip)", [&] { again = parse_safetensors(written, "round-trip.safetensors"); });
  TABBY_FUZZ_CHECK(reread, "a file tabby wrote could not be read back");
  TABBY_FUZZ_CHECK(same_tensors(file.tensors, again.tensors), "tensors changed in a write + read round trip");
  TABBY_FUZZ_CHECK(file.metadata == again.metadata, "metadata changed in a write + read round trip");
  return 0;
}
