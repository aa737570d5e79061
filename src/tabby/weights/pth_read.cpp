// Reading torch.save files: locate the pickle and the storages (zip or legacy
// stream), run the restricted unpickler, then turn each strided tensor view into
// a contiguous RawTensor after checking that it stays inside its storage.
#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <new>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/pickle_reader.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/zip_archive.h"

namespace tabby {

namespace {

using pickle::Kind;
using pickle::StorageRef;
using pickle::Unpickler;
using pickle::Value;

const char* const kDamagedHint = "the file is damaged or not a PyTorch state dict: download or save it again";

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw Error("'" + source + "' is not a valid PyTorch weights file: " + problem, kDamagedHint);
}

// Views can alias (tied weights), so the tensors may legitimately add up to more
// than the storages; more than this many times over means a crafted file trying
// to make us allocate without bound.
constexpr uint64_t kMaxAliasFactor = 16;
constexpr uint64_t kAliasAllowance = 64ull << 20;

// The bytes of each storage, by key, as found in the file.
using StorageBytes = std::map<std::string, std::string_view>;

std::string describe_value(const Value& v) {
  if (v.kind == Kind::Global) return "'" + v.text + "'";
  return Unpickler::describe(v);
}

// Parses the common persistent id checks: ('storage', <StorageType>, key, location, numel, ...).
StorageRef storage_from_pid(const Value& pid, const std::string& source, bool legacy) {
  const size_t expected = legacy ? 6 : 5;
  if (pid.kind != Kind::Tuple || pid.items.empty() || pid.items[0]->kind != Kind::String) {
    fail(source, "its pickle refers to external data in an unknown way");
  }
  if (pid.items[0]->text != "storage") {
    throw Error("refusing to load '" + source + "': its pickle refers to external '" + pid.items[0]->text.substr(0, 40) +
                    "' data (only tensor storages are allowed)",
                "this looks like a whole pickled model; re-save its state_dict() instead");
  }
  if (pid.items.size() != expected) fail(source, "a storage reference has the wrong number of fields");
  const Value* type = pid.items[1];
  if (type->kind != Kind::Global || type->global != pickle::GlobalId::StorageType) {
    fail(source, "a storage reference names " + describe_value(*type) + " as its type");
  }
  const Value* key = pid.items[2];
  const Value* numel = pid.items[4];
  if (key->kind != Kind::String || key->text.empty() || key->text.size() > 200) {
    fail(source, "a storage reference has a bad key");
  }
  if (numel->kind != Kind::Int || numel->integer < 0) fail(source, "a storage reference has a bad size");
  StorageRef ref;
  ref.dtype = type->dtype;
  ref.key = key->text;
  ref.numel = numel->integer;
  if (legacy) {
    // (view_key, offset, view_size) for storage views of PyTorch < 1.0, else None.
    const Value* view = pid.items[5];
    if (view->kind == Kind::Tuple) {
      if (view->items.size() != 3 || view->items[1]->kind != Kind::Int || view->items[2]->kind != Kind::Int) {
        fail(source, "a storage view reference is malformed");
      }
      const int64_t offset = view->items[1]->integer, size = view->items[2]->integer;
      if (offset < 0 || size < 0 || offset > ref.numel || size > ref.numel - offset) {
        fail(source, "a storage view lies outside its storage");
      }
      ref.element_offset = offset;
      ref.numel = size;
    } else if (view->kind != Kind::None) {
      fail(source, "a storage reference has a malformed view");
    }
  }
  return ref;
}

// Copies a strided view of `storage` (numel elements of elem bytes) into C order.
std::string gather(std::string_view storage, size_t elem, int64_t offset, const std::vector<int64_t>& sizes,
                   const std::vector<int64_t>& strides, int64_t numel) {
  std::string out(static_cast<size_t>(numel) * elem, '\0');
  if (numel == 0) return out;
  // Contiguous: strides are the running products (any stride for size-1 dims).
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t d = sizes.size(); d-- > 0;) {
    if (sizes[d] != 1 && strides[d] != expect) contiguous = false;
    expect *= sizes[d];
  }
  if (contiguous) {
    std::memcpy(out.data(), storage.data() + static_cast<size_t>(offset) * elem, out.size());
    return out;
  }
  const size_t ndim = sizes.size();
  std::vector<int64_t> index(ndim, 0);
  int64_t src = offset;
  char* dst = out.data();
  for (int64_t n = 0; n < numel; ++n) {
    std::memcpy(dst, storage.data() + static_cast<size_t>(src) * elem, elem);
    dst += elem;
    // Odometer increment over the multi-index, last dimension fastest.
    for (size_t d = ndim; d-- > 0;) {
      if (++index[d] < sizes[d]) {
        src += strides[d];
        break;
      }
      src -= strides[d] * (sizes[d] - 1);
      index[d] = 0;
    }
  }
  return out;
}

RawTensor materialize(const pickle::TensorRef& t, const StorageRef& s, const StorageBytes& bytes,
                      const std::string& name, const std::string& source, uint64_t& budget) {
  const std::string where = "tensor '" + name + "'";
  auto it = bytes.find(s.key);
  if (it == bytes.end()) fail(source, where + " refers to storage '" + s.key + "', which the file does not hold");
  const size_t elem = dtype_size(s.dtype);
  const uint64_t available = it->second.size() / elem;
  if (s.element_offset > 0 && static_cast<uint64_t>(s.element_offset) > available) {
    fail(source, where + " uses a storage view outside its storage");
  }
  if (static_cast<uint64_t>(s.numel) > available - static_cast<uint64_t>(s.element_offset)) {
    fail(source, "storage '" + s.key + "' holds " + std::to_string(it->second.size()) + " bytes, fewer than its " +
                     std::to_string(s.numel) + " elements need");
  }
  std::string_view storage = it->second.substr(static_cast<size_t>(s.element_offset) * elem,
                                               static_cast<size_t>(s.numel) * elem);

  if (t.offset < 0) fail(source, where + " has a negative storage offset");
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] < 0 || t.strides[d] < 0) {
      fail(source, where + " has a negative size or stride " + shape_string(t.sizes) + "/" + shape_string(t.strides));
    }
  }
  std::optional<int64_t> numel = checked_numel(t.sizes, elem);
  if (!numel) fail(source, where + " has a shape " + shape_string(t.sizes) + " too large to hold in memory");
  if (*numel > 0) {
    // The furthest element the view touches must lie inside the storage.
    int64_t last = t.offset;
    for (size_t d = 0; d < t.sizes.size(); ++d) {
      const int64_t span = t.sizes[d] - 1;
      if (t.strides[d] != 0 && span > (std::numeric_limits<int64_t>::max() - last) / t.strides[d]) {
        fail(source, where + " has strides that overflow");
      }
      last += span * t.strides[d];
    }
    if (last >= s.numel) {
      fail(source, where + " with size " + shape_string(t.sizes) + ", stride " + shape_string(t.strides) +
                       " and offset " + std::to_string(t.offset) + " reads beyond its storage of " +
                       std::to_string(s.numel) + " elements");
    }
  }
  // Overlapping views (expand()) may be larger than their storage; the budget
  // keeps a crafted file from asking for unbounded memory that way.
  const uint64_t nbytes = static_cast<uint64_t>(*numel) * elem;
  if (nbytes > budget) fail(source, "its tensors alias their storages far more than any model does");
  budget -= nbytes;
  RawTensor out;
  out.dtype = s.dtype;
  out.shape = t.sizes;
  out.data = gather(storage, elem, t.offset, t.sizes, t.strides, *numel);
  return out;
}

// The dict of tensors inside the unpickled object: the object itself, or its
// "state_dict"/"model" entry when it is a training checkpoint.
const Value* find_state_dict(const Value* top, const std::string& source) {
  if (top->kind != Kind::Dict) {
    fail(source, "it holds " + Unpickler::describe(*top) + ", not a dict of tensors");
  }
  const Value* nested = nullptr;
  bool all_tensors = true;
  for (size_t i = 0; i + 1 < top->items.size(); i += 2) {
    const Value* key = top->items[i];
    const Value* value = top->items[i + 1];
    if (value->kind != Kind::Tensor) all_tensors = false;
    if (key->kind == Kind::String && (key->text == "state_dict" || key->text == "model") && value->kind == Kind::Dict) {
      if (!nested || key->text == "state_dict") nested = value;
    }
  }
  if (!all_tensors && nested) return nested;
  return top;
}

RawTensorMap collect(const Unpickler& u, const Value* top, const StorageBytes& bytes, const std::string& source) {
  const Value* dict = find_state_dict(top, source);
  uint64_t storage_total = 0;
  for (const auto& [key, b] : bytes) storage_total += b.size();
  const uint64_t budget = storage_total * kMaxAliasFactor + kAliasAllowance;

  RawTensorMap out;
  uint64_t budget_left = budget;
  for (size_t i = 0; i + 1 < dict->items.size(); i += 2) {
    const Value* key = dict->items[i];
    const Value* value = dict->items[i + 1];
    if (key->kind != Kind::String) fail(source, "the state dict has a key that is " + Unpickler::describe(*key));
    if (value->kind != Kind::Tensor) {
      throw Error("'" + source + "': entry '" + key->text + "' is " + describe_value(*value) +
                      ", not a tensor (only state dicts of tensors can be loaded)",
                  "save model.state_dict() rather than a whole checkpoint, or convert the file to safetensors");
    }
    const pickle::TensorRef& t = u.tensors()[static_cast<size_t>(value->integer)];
    const StorageRef& s = u.storages()[static_cast<size_t>(t.storage)];
    RawTensor tensor = materialize(t, s, bytes, key->text, source, budget_left);
    out.insert_or_assign(key->text, std::move(tensor));  // a repeated key keeps the last value, as in Python
  }
  return out;
}

RawTensorMap parse_zip(const std::string& bytes, const std::string& source) {
  zip::Reader archive(bytes, source);
  // torch.save names every entry "<prefix>/..." with the prefix taken from the
  // file name at save time; find it through the pickle's entry.
  const zip::Entry* pkl = nullptr;
  for (const zip::Entry& e : archive.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && slash > 0 && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pkl) fail(source, "it holds more than one data.pkl");
      pkl = &e;
    }
  }
  if (!pkl) {
    for (const zip::Entry& e : archive.entries()) {
      if (e.name.find("/code/") != std::string::npos || e.name.find("constants.pkl") != std::string::npos) {
        throw Error("'" + source + "' is a TorchScript archive (torch.jit.save), not a state dict",
                    "save the weights with torch.save(model.state_dict(), path) instead");
      }
    }
    fail(source, "it is a zip archive without a data.pkl entry (not a torch.save file)");
  }
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - std::string("data.pkl").size());
  if (const zip::Entry* order = archive.find(prefix + "byteorder")) {
    std::string buffer;
    std::string_view text = archive.read(*order, buffer);
    if (text != "little") {
      throw Error("'" + source + "' stores its tensors big-endian, which tabby does not support",
                  "re-save the file with torch.save on a little-endian machine");
    }
  }

  std::string pickle_buffer;
  const std::string_view pickle_bytes = archive.read(*pkl, pickle_buffer);
  Unpickler u(pickle_bytes, source,
              [&](const Value& pid) { return storage_from_pid(pid, source, /*legacy=*/false); });
  const Value* top = u.load();

  // Storage bytes by key, read (and inflated when compressed) once each.
  std::map<std::string, std::string> inflated;
  StorageBytes storages;
  for (const StorageRef& s : u.storages()) {
    if (storages.count(s.key)) continue;
    const zip::Entry* e = archive.find(prefix + "data/" + s.key);
    if (!e) fail(source, "storage '" + s.key + "' is missing from the archive");
    std::string& buffer = inflated[s.key];
    storages[s.key] = archive.read(*e, buffer);
  }
  return collect(u, top, storages, source);
}

// Legacy stream: pickles of the magic number, the protocol version and system
// info, then the object, then the list of storage keys, then for each key an
// int64 element count followed by the storage's raw bytes.
RawTensorMap parse_legacy(const std::string& bytes, const std::string& source) {
  static const unsigned char kMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  Unpickler header(bytes, source, nullptr);
  const Value* magic = header.load(0);
  if (magic->kind != Kind::BigInt || magic->text != std::string(reinterpret_cast<const char*>(kMagic), sizeof kMagic)) {
    fail(source, "it starts with a pickle but not with torch.save's magic number");
  }
  const Value* version = header.load(header.end_offset());
  if (version->kind != Kind::Int || version->integer != 1001) {
    fail(source, "it uses legacy format version " +
                     (version->kind == Kind::Int ? std::to_string(version->integer) : std::string("?")) +
                     " (only 1001 is known)");
  }
  const Value* sys_info = header.load(header.end_offset());
  if (sys_info->kind == Kind::Dict) {
    for (size_t i = 0; i + 1 < sys_info->items.size(); i += 2) {
      const Value* k = sys_info->items[i];
      const Value* v = sys_info->items[i + 1];
      if (k->kind == Kind::String && k->text == "little_endian" && v->kind == Kind::Bool && !v->boolean) {
        throw Error("'" + source + "' stores its tensors big-endian, which tabby does not support",
                    "re-save the file with torch.save on a little-endian machine");
      }
    }
  }

  // Storage element types by root key, from the object's persistent ids.
  std::map<std::string, std::pair<DType, int64_t>> roots;
  Unpickler u(bytes, source, [&](const Value& pid) {
    StorageRef ref = storage_from_pid(pid, source, /*legacy=*/true);
    const int64_t root_numel = pid.items[4]->integer;
    auto [it, inserted] = roots.emplace(ref.key, std::make_pair(ref.dtype, root_numel));
    if (!inserted && (it->second.first != ref.dtype || it->second.second != root_numel)) {
      fail(source, "storage '" + ref.key + "' is described in two different ways");
    }
    return ref;
  });
  const Value* top = u.load(header.end_offset());

  Unpickler keys_reader(bytes, source, nullptr);
  const Value* keys = keys_reader.load(u.end_offset());
  if (keys->kind != Kind::List) fail(source, "its storage key list is missing");

  size_t pos = keys_reader.end_offset();
  StorageBytes storages;
  for (const Value* key : keys->items) {
    if (key->kind != Kind::String) fail(source, "its storage key list holds " + Unpickler::describe(*key));
    auto root = roots.find(key->text);
    if (root == roots.end()) fail(source, "it holds storage '" + key->text + "', which no tensor uses");
    if (bytes.size() - pos < 8) fail(source, "it ends before the data of storage '" + key->text + "' (truncated)");
    uint64_t count = 0;
    for (int i = 7; i >= 0; --i) count = (count << 8) | static_cast<unsigned char>(bytes[pos + static_cast<size_t>(i)]);
    pos += 8;
    const size_t elem = dtype_size(root->second.first);
    if (count != static_cast<uint64_t>(root->second.second)) {
      fail(source, "storage '" + key->text + "' has " + std::to_string(count) + " elements, not the " +
                       std::to_string(root->second.second) + " its tensors expect");
    }
    if (count > (bytes.size() - pos) / elem) fail(source, "it ends inside the data of storage '" + key->text + "' (truncated)");
    if (storages.count(key->text)) fail(source, "storage '" + key->text + "' appears twice");
    storages[key->text] = std::string_view(bytes).substr(pos, static_cast<size_t>(count) * elem);
    pos += static_cast<size_t>(count) * elem;
  }
  return collect(u, top, storages, source);
}

bool looks_like_tar(const std::string& bytes) {
  return bytes.size() >= 512 && bytes.compare(257, 5, "ustar") == 0;
}

RawTensorMap parse_any(const std::string& bytes, const std::string& source) {
  if (zip::looks_like_zip(bytes)) return parse_zip(bytes, source);
  if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) == 0x80) return parse_legacy(bytes, source);
  if (looks_like_tar(bytes)) {
    throw Error("'" + source + "' uses the tar-based .pth format of PyTorch < 0.4, which is not supported",
                "re-save it with a current torch.save");
  }
  fail(source, "it is neither a zip-format nor a legacy torch.save file");
}

}  // namespace

bool looks_like_pth(const std::string& bytes) {
  return zip::looks_like_zip(bytes) || (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x80 &&
                                        static_cast<unsigned char>(bytes[1]) <= 5) ||
         looks_like_tar(bytes);
}

RawTensorMap parse_pth(const std::string& bytes, const std::string& source_name) {
  try {
    return parse_any(bytes, source_name);
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error("not enough memory to read '" + source_name + "'");
  } catch (const std::exception& e) {
    fail(source_name, e.what());
  }
}

RawTensorMap read_pth(const std::filesystem::path& path) { return parse_pth(read_file(path), path.string()); }

}  // namespace tabby
