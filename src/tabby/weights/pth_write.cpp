// Writing a zip-format torch.save file. The pickle is what torch.save(OrderedDict)
// produces at protocol 2: OrderedDict() filled with SETITEM, each value a call to
// torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
// whose storage is a persistent id ('storage', torch.<T>Storage, key, 'cpu', numel)
// naming the entry archive/data/<key>.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "tabby/util/error.h"
#include "tabby/util/fs.h"
#include "tabby/weights/pth.h"
#include "tabby/weights/zip_archive.h"

namespace tabby {

namespace {

const char* storage_class(DType dtype) {
  switch (dtype) {
    case DType::F32: return "FloatStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::F64: return "DoubleStorage";
    case DType::I64: return "LongStorage";
    case DType::I32: return "IntStorage";
    case DType::I16: return "ShortStorage";
    case DType::I8: return "CharStorage";
    case DType::U8: return "ByteStorage";
    case DType::Bool: return "BoolStorage";
  }
  return "FloatStorage";
}

class PickleWriter {
 public:
  PickleWriter() { out_ += "\x80\x02"; }  // PROTO 2

  void global(const std::string& module, const std::string& name) { out_ += "c" + module + "\n" + name + "\n"; }
  void binput(uint8_t index) {
    out_ += 'q';
    out_ += static_cast<char>(index);
  }
  void binget(uint8_t index) {
    out_ += 'h';
    out_ += static_cast<char>(index);
  }
  void op(char c) { out_ += c; }

  void string(const std::string& s) {
    out_ += 'X';
    le(s.size(), 4);
    out_ += s;
  }

  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      out_ += 'M';
      le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';
      le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
    } else {
      out_ += '\x8a';  // LONG1 with 8 little-endian two's complement bytes
      out_ += '\x08';
      le(static_cast<uint64_t>(v), 8);
    }
  }

  void int_tuple(const std::vector<int64_t>& values) {
    if (values.empty()) {
      op(')');  // EMPTY_TUPLE
      return;
    }
    op('(');
    for (int64_t v : values) integer(v);
    op('t');
  }

  std::string finish() {
    out_ += '.';
    return std::move(out_);
  }

 private:
  void le(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
};

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) strides[d - 1] = strides[d] * std::max<int64_t>(shape[d], 1);
  return strides;
}

}  // namespace

std::string serialize_pth(const RawTensorMap& tensors) {
  constexpr uint8_t kOrderedDictMemo = 0, kRebuildMemo = 1;
  PickleWriter p;
  p.global("collections", "OrderedDict");
  p.binput(kOrderedDictMemo);
  p.op(')');
  p.op('R');

  zip::Writer zip;
  std::vector<std::pair<std::string, const RawTensor*>> storages;
  size_t index = 0;
  for (const auto& [name, t] : tensors) {
    if (t.data.size() != t.expected_bytes()) {
      throw Error("cannot write tensor '" + name + "': it holds " + std::to_string(t.data.size()) +
                  " bytes but its dtype " + dtype_name(t.dtype) + " and shape " + shape_string(t.shape) + " need " +
                  std::to_string(t.expected_bytes()));
    }
    const std::string key = std::to_string(index++);
    p.string(name);
    if (index == 1) {
      p.global("torch._utils", "_rebuild_tensor_v2");
      p.binput(kRebuildMemo);
    } else {
      p.binget(kRebuildMemo);
    }
    p.op('(');
    // Persistent id of the storage.
    p.op('(');
    p.string("storage");
    p.global("torch", storage_class(t.dtype));
    p.string(key);
    p.string("cpu");
    p.integer(t.numel());
    p.op('t');
    p.op('Q');  // BINPERSID
    p.integer(0);
    p.int_tuple(t.shape);
    p.int_tuple(contiguous_strides(t.shape));
    p.op('\x89');  // requires_grad = False
    p.binget(kOrderedDictMemo);
    p.op(')');
    p.op('R');  // backward_hooks = OrderedDict()
    p.op('t');
    p.op('R');
    p.op('s');  // SETITEM
    storages.emplace_back(key, &t);
  }

  zip.add("archive/data.pkl", p.finish());
  zip.add("archive/byteorder", "little");
  for (const auto& [key, t] : storages) zip.add("archive/data/" + key, t->data);
  zip.add("archive/version", "3\n");
  return zip.finish();
}

void write_pth(const std::filesystem::path& path, const RawTensorMap& tensors) {
  write_file_atomic(path, serialize_pth(tensors));
}

}  // namespace tabby
