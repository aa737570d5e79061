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
#include "support/pth_writer.h"
#include "tabby/weights/zip_archive.h"

namespace tabby {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr size_t kLocalSize = 30;

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v & 0xffff));
  put16(out, static_cast<uint16_t>(v >> 16));
}



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

void ZipWriter::add(const std::string& name, std::string_view data) {
  const uint64_t offset = out_.size();
  if (offset + data.size() + name.size() + 200 >= 0xffffffffull) {
    throw Error("cannot write a .pth file larger than 4 GB", "save the weights as safetensors instead");
  }
  if (name.size() > 0xffff) throw Error("zip entry name too long: " + name.substr(0, 80));
  if (entries_.size() >= 0xfffe) throw Error("too many tensors for a .pth file (at most 65534)");
  zip::Entry e;
  e.name = name;
  e.local_header_offset = offset;
  e.compressed_size = e.uncompressed_size = data.size();
  e.crc32 = zip::crc32_of(data);

  // torch.save aligns each entry's data to 64 bytes with an extra field tagged
  // "FB" filled with padding, so readers can map tensors in place.
  const uint64_t header_end = offset + kLocalSize + name.size() + 4;
  const uint16_t pad = static_cast<uint16_t>((64 - header_end % 64) % 64);
  put32(out_, kLocalSig);
  put16(out_, 20);  // version needed to extract
  put16(out_, 0);   // flags
  put16(out_, 0);   // method: stored
  put16(out_, 0);   // time
  put16(out_, 0x21);  // date: 1980-01-01
  put32(out_, e.crc32);
  put32(out_, static_cast<uint32_t>(data.size()));
  put32(out_, static_cast<uint32_t>(data.size()));
  put16(out_, static_cast<uint16_t>(name.size()));
  put16(out_, static_cast<uint16_t>(4 + pad));
  out_ += name;
  out_ += "FB";
  put16(out_, pad);
  out_.append(pad, 'Z');
  out_.append(data.data(), data.size());
  entries_.push_back(std::move(e));
}

std::string ZipWriter::finish() {
  const uint64_t cd_offset = out_.size();
  for (const zip::Entry& e : entries_) {
    put32(out_, kCentralSig);
    put16(out_, 20);  // version made by
    put16(out_, 20);  // version needed
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, 0x21);
    put32(out_, e.crc32);
    put32(out_, static_cast<uint32_t>(e.compressed_size));
    put32(out_, static_cast<uint32_t>(e.uncompressed_size));
    put16(out_, static_cast<uint16_t>(e.name.size()));
    put16(out_, 0);  // extra
    put16(out_, 0);  // comment
    put16(out_, 0);  // disk
    put16(out_, 0);  // internal attributes
    put32(out_, 0);  // external attributes
    put32(out_, static_cast<uint32_t>(e.local_header_offset));
    out_ += e.name;
  }
  const uint64_t cd_size = out_.size() - cd_offset;
  if (out_.size() >= 0xffffffffull) {
    throw Error("cannot write a .pth file larger than 4 GB", "save the weights as safetensors instead");
  }
  put32(out_, kEndSig);
  put16(out_, 0);
  put16(out_, 0);
  put16(out_, static_cast<uint16_t>(entries_.size()));
  put16(out_, static_cast<uint16_t>(entries_.size()));
  put32(out_, static_cast<uint32_t>(cd_size));
  put32(out_, static_cast<uint32_t>(cd_offset));
  put16(out_, 0);
  entries_.clear();
  return std::move(out_);
}

std::string serialize_pth(const RawTensorMap& tensors) {
  constexpr uint8_t kOrderedDictMemo = 0, kRebuildMemo = 1;
  PickleWriter p;
  p.global("collections", "OrderedDict");
  p.binput(kOrderedDictMemo);
  p.op(')');
  p.op('R');

  ZipWriter zip;
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
