// A restricted unpickler for PyTorch state dicts (internal to src/tabby/weights).
// Python's pickle format is a small stack machine whose GLOBAL and REDUCE
// opcodes can call any Python function: that is how a .pth file can run code.
// This reader never calls anything. It builds plain values (None, bool, int,
// float, str, bytes, tuple, list, dict) and understands exactly the handful of
// globals a state dict needs (OrderedDict, torch's tensor rebuild functions and
// storage types); any other global is refused with an Error naming it. Stack,
// memo, object count and integer sizes are bounded, and objects live in an arena
// owned by the reader, so hostile input cannot exhaust the stack or leak.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tabby/weights/raw_tensor.h"

namespace tabby::pickle {

enum class Kind { None, Bool, Int, BigInt, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

// The only globals a state dict may name.
enum class GlobalId {
  OrderedDict,           // collections.OrderedDict
  RebuildTensorV2,       // torch._utils._rebuild_tensor_v2
  RebuildTensor,         // torch._utils._rebuild_tensor (PyTorch < 0.4 files)
  RebuildParameter,      // torch._utils._rebuild_parameter
  RebuildParameterWithState,  // torch._utils._rebuild_parameter_with_state
  RebuildFromTypeV2,     // torch._tensor._rebuild_from_type_v2 (tensors with attributes)
  TorchSize,             // torch.Size (a tuple)
  TensorType,            // torch.Tensor / torch.nn.parameter.Parameter, as a type tag only
  StorageType,           // torch.FloatStorage etc.; `dtype` says which
};

struct Value {
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;  // Int; Storage and Tensor: index into Unpickler::storages()/tensors()
  double real = 0;
  std::string text;     // String, Bytes, BigInt (little-endian two's complement), Global (dotted name)
  std::vector<Value*> items;  // Tuple, List; Dict: key0, value0, key1, value1, ...
  GlobalId global = GlobalId::OrderedDict;
  DType dtype = DType::F32;   // StorageType globals
};

// A storage a persistent id referred to: `numel` elements of `dtype` found under
// `key` (a zip entry or a legacy-format record), starting `element_offset`
// elements in (legacy storage views).
struct StorageRef {
  DType dtype = DType::F32;
  std::string key;
  int64_t numel = 0;
  int64_t element_offset = 0;
};

// A tensor as torch describes it: a strided view of a storage.
struct TensorRef {
  int storage = -1;  // index into storages()
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

class Unpickler {
 public:
  // Maps a persistent id (a tuple) to a StorageRef; throws tabby::Error when the
  // id is not a storage reference it understands.
  using PersistentLoad = std::function<StorageRef(const Value& pid)>;

  Unpickler(std::string_view data, std::string source_name, PersistentLoad persistent_load);

  // Runs the pickle from `start` up to its STOP opcode and returns the result.
  const Value* load(size_t start = 0);
  // Offset just past the STOP opcode of the last load().
  size_t end_offset() const { return pos_; }

  const std::vector<StorageRef>& storages() const { return storages_; }
  const std::vector<TensorRef>& tensors() const { return tensors_; }

  // Describes a value's type for messages ("a dict", "an int").
  static std::string describe(const Value& v);

 private:
  [[noreturn]] void malformed(const std::string& problem) const;
  Value* make(Kind kind);
  Value* pop();
  Value* top();
  std::vector<Value*> pop_to_mark();
  const char* take(size_t n);
  void push(Value* v);
  void memo_put(uint64_t index, Value* v);
  Value* memo_get(uint64_t index);
  Value* resolve_global(const std::string& module, const std::string& name);
  Value* reduce(Value* callable, Value* args);
  Value* rebuild_tensor(const std::vector<Value*>& args, bool v2);
  int64_t int_arg(const Value* v, const char* what) const;
  std::vector<int64_t> int_tuple_arg(const Value* v, const char* what) const;

  std::string_view data_;
  std::string source_;
  PersistentLoad persistent_load_;
  size_t pos_ = 0;
  std::deque<Value> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::vector<StorageRef> storages_;
  std::vector<TensorRef> tensors_;
  Value none_, true_, false_, empty_tuple_;
};

}  // namespace tabby::pickle
