// safetensors reading and writing. The reader trusts nothing in the file: the
// header length, JSON nesting, dtypes, shapes and offsets are all checked before
// any byte is copied, so damaged or hostile files end in a tabby::Error.
#include "tabby/weights/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <tuple>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"

namespace tabby {

namespace {

using json = nlohmann::json;

constexpr int kMaxJsonDepth = 64;
const char* const kNotSafetensorsHint = "the file is damaged, truncated or not safetensors: export or download it again";

[[noreturn]] void fail_safetensors(const std::string& source, const std::string& problem) {
  throw Error("'" + source + "' is not a valid safetensors file: " + problem, kNotSafetensorsHint);
}

uint64_t read_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void append_le64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// nlohmann's parser recurses per nesting level; a header of a million '['
// would exhaust the stack, so nesting is measured first without parsing.
int json_nesting_depth(const std::string& text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') max_depth = std::max(max_depth, ++depth);
    else if (c == '}' || c == ']') --depth;
  }
  return max_depth;
}

// A non-negative JSON integer that fits int64, or nullopt.
std::optional<int64_t> json_index(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i < 0) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

bool is_known_unsupported_dtype(const std::string& name) {
  static const char* const names[] = {"U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                      "F4", "F6_E2M3", "F6_E3M2", "C64", "C128"};
  for (const char* n : names) {
    if (name == n) return true;
  }
  return false;
}

struct Span {
  int64_t begin, end;
  std::string name;
};

SafetensorsFile parse_checked(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8) {
    fail_safetensors(source, "it is only " + std::to_string(bytes.size()) + " bytes long (a header length alone takes 8)");
  }
  const uint64_t header_len = read_le64(bytes.data());
  if (header_len > kMaxSafetensorsHeader) {
    fail_safetensors(source, "its header length " + std::to_string(header_len) + " is larger than the " +
                     std::to_string(kMaxSafetensorsHeader) + "-byte limit");
  }
  if (header_len > bytes.size() - 8) {
    fail_safetensors(source, "its header length " + std::to_string(header_len) + " goes past the end of the file (" +
                     std::to_string(bytes.size()) + " bytes): the file is truncated");
  }
  const std::string header = bytes.substr(8, header_len);
  const size_t first = header.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || header[first] != '{') fail_safetensors(source, "its header is not a JSON object");
  if (json_nesting_depth(header) > kMaxJsonDepth) fail_safetensors(source, "its JSON header is nested too deeply");

  json root = json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) fail_safetensors(source, "its header is not valid JSON");
  if (!root.is_object()) fail_safetensors(source, "its header is not a JSON object");

  const size_t data_start = 8 + header_len;
  const int64_t data_size = static_cast<int64_t>(bytes.size() - data_start);

  SafetensorsFile out;
  std::vector<Span> spans;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (entry.is_null()) continue;
      if (!entry.is_object()) fail_safetensors(source, "__metadata__ is not an object of strings");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) fail_safetensors(source, "__metadata__ entry '" + m.key() + "' is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object()) fail_safetensors(source, where + " is not described by a JSON object");

    auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail_safetensors(source, where + " has no dtype string");
    const std::string dtype_text = dt->get<std::string>();
    std::optional<DType> dtype = dtype_from_name(dtype_text);
    if (!dtype) {
      if (is_known_unsupported_dtype(dtype_text)) {
        throw Error("'" + source + "': " + where + " has dtype " + dtype_text + ", which tabby does not support",
                    "convert the tensor to F32, F16 or BF16 before loading it");
      }
      fail_safetensors(source, where + " has an unknown dtype '" + dtype_text + "'");
    }

    auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) fail_safetensors(source, where + " has no shape array");
    if (sh->size() > 64) fail_safetensors(source, where + " has " + std::to_string(sh->size()) + " dimensions (at most 64)");
    std::vector<int64_t> shape;
    for (const json& d : *sh) {
      auto v = json_index(d);
      if (!v) fail_safetensors(source, where + " has a shape entry that is not a non-negative integer: " + d.dump());
      shape.push_back(*v);
    }
    std::optional<int64_t> numel = checked_numel(shape, dtype_size(*dtype));
    if (!numel) fail_safetensors(source, where + " has a shape " + shape_string(shape) + " too large to hold in memory");
    const int64_t nbytes = *numel * static_cast<int64_t>(dtype_size(*dtype));

    auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2) {
      fail_safetensors(source, where + " has no data_offsets pair [begin, end]");
    }
    auto begin = json_index((*off)[0]), end = json_index((*off)[1]);
    if (!begin || !end) fail_safetensors(source, where + " has data_offsets that are not non-negative integers");
    if (*begin > *end) fail_safetensors(source, where + " has data_offsets that end before they begin");
    if (*end > data_size) {
      fail_safetensors(source, where + " has data_offsets [" + std::to_string(*begin) + ", " + std::to_string(*end) +
                       "] past the end of the data (" + std::to_string(data_size) + " bytes): the file is truncated");
    }
    if (*end - *begin != nbytes) {
      fail_safetensors(source, where + " holds " + std::to_string(*end - *begin) + " bytes but its dtype " + dtype_text +
                       " and shape " + shape_string(shape) + " need " + std::to_string(nbytes));
    }
    spans.push_back({*begin, *end, name});

    RawTensor t;
    t.dtype = *dtype;
    t.shape = std::move(shape);
    t.data.assign(bytes.data() + data_start + *begin, static_cast<size_t>(nbytes));
    out.tensors.emplace(name, std::move(t));
  }

  // Overlapping tensors would alias each other: the reference writer never
  // produces them, so they mean a damaged or crafted file.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  int64_t covered = 0;
  const Span* last = nullptr;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    if (last && s.begin < covered) fail_safetensors(source, "tensors '" + last->name + "' and '" + s.name + "' overlap");
    covered = s.end;
    last = &s;
  }
  return out;
}

}  // namespace

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& source_name) {
  try {
    return parse_checked(bytes, source_name);
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory to read '" + source_name + "'");
  } catch (const std::exception& e) {
    fail_safetensors(source_name, e.what());
  }
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  return parse_safetensors(read_file(path), path.string());
}

std::string serialize_safetensors(const RawTensorMap& tensors, const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) {
    json meta = json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw Error("a tensor cannot be named '__metadata__' in a safetensors file");
    if (t.data.size() != t.expected_bytes()) {
      throw Error("cannot write tensor '" + name + "': it holds " + std::to_string(t.data.size()) +
                  " bytes but its dtype " + dtype_name(t.dtype) + " and shape " + shape_string(t.shape) + " need " +
                  std::to_string(t.expected_bytes()));
    }
    header[name] = {{"dtype", dtype_name(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception&) {
    throw Error("cannot write a safetensors file: tensor names and metadata must be valid UTF-8");
  }
  // The reference writer pads the header with spaces so the data starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  append_le64(out, text.size());
  out += text;
  for (const auto& [name, t] : tensors) out += t.data;
  return out;
}

void write_safetensors(const std::filesystem::path& path, const RawTensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace tabby
