// The restricted unpickler. Opcode meanings follow CPython's Lib/pickletools.py
// (protocols 0-5, binary opcodes only; torch.save writes protocol 2). Nothing
// here ever imports or calls Python code: GLOBAL resolves to a fixed allowlist
// and REDUCE interprets those few callables itself.
#include "tabby/weights/pickle_reader.h"

#include <cstdio>
#include <cstring>
#include <limits>

#include "tabby/util/error.h"

namespace tabby::pickle {

namespace {

constexpr size_t kMaxValues = 4'000'000;   // objects one pickle may create
constexpr size_t kMaxStack = 1'000'000;    // stack entries and marks
constexpr size_t kMaxBigIntBytes = 1024;
constexpr size_t kMaxGlobalName = 256;
constexpr size_t kMaxDims = 64;

const char* const kRefuseHint =
    "only load files you trust in Python; to use this one, re-save its weights there with "
    "torch.save(model.state_dict(), path) or as safetensors";

struct AllowedGlobal {
  const char* name;
  GlobalId id;
  DType dtype;
};

const AllowedGlobal kAllowed[] = {
    {"collections.OrderedDict", GlobalId::OrderedDict, DType::F32},
    {"torch._utils._rebuild_tensor_v2", GlobalId::RebuildTensorV2, DType::F32},
    {"torch._utils._rebuild_tensor", GlobalId::RebuildTensor, DType::F32},
    {"torch._utils._rebuild_parameter", GlobalId::RebuildParameter, DType::F32},
    {"torch._utils._rebuild_parameter_with_state", GlobalId::RebuildParameterWithState, DType::F32},
    {"torch._tensor._rebuild_from_type_v2", GlobalId::RebuildFromTypeV2, DType::F32},
    {"torch.Size", GlobalId::TorchSize, DType::F32},
    {"torch.Tensor", GlobalId::TensorType, DType::F32},
    {"torch._tensor.Tensor", GlobalId::TensorType, DType::F32},
    {"torch.nn.parameter.Parameter", GlobalId::TensorType, DType::F32},
    {"FloatStorage", GlobalId::StorageType, DType::F32},
    {"HalfStorage", GlobalId::StorageType, DType::F16},
    {"BFloat16Storage", GlobalId::StorageType, DType::BF16},
    {"DoubleStorage", GlobalId::StorageType, DType::F64},
    {"LongStorage", GlobalId::StorageType, DType::I64},
    {"IntStorage", GlobalId::StorageType, DType::I32},
    {"ShortStorage", GlobalId::StorageType, DType::I16},
    {"CharStorage", GlobalId::StorageType, DType::I8},
    {"ByteStorage", GlobalId::StorageType, DType::U8},
    {"BoolStorage", GlobalId::StorageType, DType::Bool},
};

// Non-printable bytes in a name from the file would garble the message.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) out.push_back(static_cast<char>(c));
    else out += "?";
  }
  return out;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int:
    case Kind::BigInt: return "an int";
    case Kind::Float: return "a float";
    case Kind::String: return "a string";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "a tuple";
    case Kind::List: return "a list";
    case Kind::Dict: return "a dict";
    case Kind::Global: return "a Python class or function";
    case Kind::Storage: return "a storage";
    case Kind::Tensor: return "a tensor";
  }
  return "a value";
}

}  // namespace

std::string Unpickler::describe(const Value& v) { return kind_name(v.kind); }

Unpickler::Unpickler(std::string_view data, std::string source_name, PersistentLoad persistent_load)
    : data_(data), source_(std::move(source_name)), persistent_load_(std::move(persistent_load)) {
  none_.kind = Kind::None;
  true_.kind = Kind::Bool;
  true_.boolean = true;
  false_.kind = Kind::Bool;
  empty_tuple_.kind = Kind::Tuple;
}

void Unpickler::malformed(const std::string& problem) const {
  throw Error("'" + source_ + "' is not a valid PyTorch weights file: its pickle " + problem + " (at byte " +
                  std::to_string(pos_) + ")",
              "the file is damaged or not a PyTorch state dict: download or save it again");
}

Value* Unpickler::make(Kind kind) {
  if (arena_.size() >= kMaxValues) malformed("creates too many objects");
  arena_.emplace_back();
  arena_.back().kind = kind;
  return &arena_.back();
}

void Unpickler::push(Value* v) {
  if (stack_.size() >= kMaxStack) malformed("grows its stack too deep");
  stack_.push_back(v);
}

Value* Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) malformed("pops an empty stack");
  Value* v = stack_.back();
  stack_.pop_back();
  return v;
}

Value* Unpickler::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) malformed("reads an empty stack");
  return stack_.back();
}

std::vector<Value*> Unpickler::pop_to_mark() {
  if (marks_.empty()) malformed("closes a mark it never opened");
  const size_t m = marks_.back();
  marks_.pop_back();
  std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
  stack_.resize(m);
  return items;
}

const char* Unpickler::take(size_t n) {
  if (pos_ > data_.size() || n > data_.size() - pos_) malformed("ends early (the file is truncated)");
  const char* p = data_.data() + pos_;
  pos_ += n;
  return p;
}

void Unpickler::memo_put(uint64_t index, Value* v) {
  if (memo_.size() >= kMaxValues && !memo_.count(index)) malformed("memoizes too many objects");
  memo_[index] = v;
}

Value* Unpickler::memo_get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) malformed("reads memo slot " + std::to_string(index) + ", which was never written");
  return it->second;
}

Value* Unpickler::resolve_global(const std::string& module, const std::string& name) {
  const std::string dotted = module + "." + name;
  for (const AllowedGlobal& g : kAllowed) {
    const bool storage = g.id == GlobalId::StorageType;
    // Storage types appear as torch.X or, in files saved from a GPU by old
    // versions, torch.cuda.X; the device is irrelevant to the bytes.
    const bool match = storage ? ((module == "torch" || module == "torch.cuda") && name == g.name) : dotted == g.name;
    if (!match) continue;
    Value* v = make(Kind::Global);
    v->global = g.id;
    v->dtype = g.dtype;
    v->text = dotted;
    return v;
  }
  throw Error("refusing to load '" + source_ + "': its pickle asks for global '" + printable(dotted) +
                  "' (only state dicts of tensors are allowed)",
              kRefuseHint);
}

int64_t Unpickler::int_arg(const Value* v, const char* what) const {
  if (v->kind == Kind::Int) return v->integer;
  if (v->kind == Kind::Bool) return v->boolean ? 1 : 0;
  malformed(std::string("gives ") + kind_name(v->kind) + " where a tensor's " + what + " should be an int");
}

std::vector<int64_t> Unpickler::int_tuple_arg(const Value* v, const char* what) const {
  if (v->kind != Kind::Tuple && v->kind != Kind::List) {
    malformed(std::string("gives ") + kind_name(v->kind) + " where a tensor's " + what + " should be a tuple");
  }
  if (v->items.size() > kMaxDims) malformed(std::string("gives a tensor ") + what + " with too many dimensions");
  std::vector<int64_t> out;
  for (const Value* item : v->items) out.push_back(int_arg(item, what));
  return out;
}

Value* Unpickler::rebuild_tensor(const std::vector<Value*>& args, bool v2) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
  // backward_hooks[, metadata]); _rebuild_tensor has the first four only.
  if (args.size() < 4 || (!v2 && args.size() != 4) || args.size() > 7) {
    malformed("rebuilds a tensor with " + std::to_string(args.size()) + " arguments");
  }
  if (args[0]->kind != Kind::Storage) malformed("rebuilds a tensor from something that is not a storage");
  TensorRef t;
  t.storage = static_cast<int>(args[0]->integer);
  t.offset = int_arg(args[1], "storage offset");
  t.sizes = int_tuple_arg(args[2], "size");
  t.strides = int_tuple_arg(args[3], "stride");
  if (t.sizes.size() != t.strides.size()) malformed("rebuilds a tensor whose size and stride differ in length");
  Value* v = make(Kind::Tensor);
  v->integer = static_cast<int64_t>(tensors_.size());
  tensors_.push_back(std::move(t));
  return v;
}

Value* Unpickler::reduce(Value* callable, Value* args) {
  if (callable->kind != Kind::Global) malformed("calls " + describe(*callable) + ", which is not callable");
  if (args->kind != Kind::Tuple) malformed("calls " + callable->text + " without an argument tuple");
  const std::vector<Value*>& a = args->items;
  switch (callable->global) {
    case GlobalId::OrderedDict: {
      Value* dict = make(Kind::Dict);
      if (a.empty()) return dict;
      // Python 2 pickled OrderedDict(items) with items a list of [key, value] pairs.
      if (a.size() != 1 || (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple)) {
        malformed("builds an OrderedDict from unexpected arguments");
      }
      for (Value* pair : a[0]->items) {
        if ((pair->kind != Kind::List && pair->kind != Kind::Tuple) || pair->items.size() != 2) {
          malformed("builds an OrderedDict from something other than key-value pairs");
        }
        dict->items.push_back(pair->items[0]);
        dict->items.push_back(pair->items[1]);
      }
      return dict;
    }
    case GlobalId::RebuildTensorV2: return rebuild_tensor(a, true);
    case GlobalId::RebuildTensor: return rebuild_tensor(a, false);
    case GlobalId::RebuildParameter:
    case GlobalId::RebuildParameterWithState:
      // (data, requires_grad, backward_hooks[, state]): the parameter is its data.
      if (a.size() < 3 || a[0]->kind != Kind::Tensor) malformed("rebuilds a parameter without tensor data");
      return a[0];
    case GlobalId::RebuildFromTypeV2: {
      // (func, new_type, func_args, state): a tensor subclass or a tensor with
      // Python attributes; only the tensor itself matters here.
      if (a.size() != 4 || a[0]->kind != Kind::Global || a[1]->kind != Kind::Global ||
          a[1]->global != GlobalId::TensorType) {
        malformed("rebuilds a tensor of an unexpected type");
      }
      if (a[0]->global == GlobalId::RebuildFromTypeV2) malformed("nests tensor rebuilds");
      Value* result = reduce(a[0], a[2]);
      if (result->kind != Kind::Tensor) malformed("rebuilds a tensor type around something that is not a tensor");
      return result;
    }
    case GlobalId::TorchSize:
      if (a.size() != 1 || (a[0]->kind != Kind::Tuple && a[0]->kind != Kind::List)) {
        malformed("builds a torch.Size from unexpected arguments");
      }
      if (a[0]->kind == Kind::Tuple) return a[0];
      {
        Value* t = make(Kind::Tuple);
        t->items = a[0]->items;
        return t;
      }
    case GlobalId::TensorType:
    case GlobalId::StorageType: break;
  }
  throw Error("refusing to load '" + source_ + "': its pickle calls '" + printable(callable->text) +
                  "', which plain state dicts never do",
              kRefuseHint);
}

const Value* Unpickler::load(size_t start) {
  pos_ = start;
  stack_.clear();
  marks_.clear();
  memo_.clear();
  auto read_u8 = [&] { return static_cast<unsigned char>(*take(1)); };
  auto read_le = [&](size_t n) {
    const char* p = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  };
  auto read_line = [&]() {
    std::string s;
    for (;;) {
      char c = *take(1);
      if (c == '\n') return s;
      if (s.size() >= kMaxGlobalName) malformed("names a global that is too long");
      s.push_back(c);
    }
  };
  auto make_int = [&](int64_t i) {
    Value* v = make(Kind::Int);
    v->integer = i;
    return v;
  };
  auto make_text = [&](Kind kind, uint64_t n) {
    if (n > data_.size()) malformed("declares a string longer than the file");
    Value* v = make(kind);
    v->text.assign(take(static_cast<size_t>(n)), static_cast<size_t>(n));
    return v;
  };
  auto make_long = [&](uint64_t n) {
    if (n > kMaxBigIntBytes) malformed("holds an integer that is too large");
    const char* p = take(static_cast<size_t>(n));
    if (n > 8) {
      Value* v = make(Kind::BigInt);
      v->text.assign(p, static_cast<size_t>(n));
      return v;
    }
    uint64_t u = 0;
    for (size_t i = n; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(p[i]);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(p[n - 1]) & 0x80)) u |= ~uint64_t{0} << (8 * n);
    int64_t i;
    std::memcpy(&i, &u, sizeof i);
    return make_int(i);
  };
  auto make_tuple = [&](std::vector<Value*> items) {
    if (items.empty()) return &empty_tuple_;
    Value* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  };
  auto add_items = [&](Value* dict, const std::vector<Value*>& kv) {
    if (dict->kind != Kind::Dict) malformed("sets items on " + describe(*dict) + ", which is not a dict");
    if (kv.size() % 2 != 0) malformed("sets dict items with a key but no value");
    dict->items.insert(dict->items.end(), kv.begin(), kv.end());
  };

  for (;;) {
    const size_t op_pos = pos_;
    const unsigned char op = read_u8();
    switch (op) {
      case 0x80: {  // PROTO
        const unsigned proto = read_u8();
        if (proto > 5) malformed("uses pickle protocol " + std::to_string(proto));
        break;
      }
      case 0x95: read_le(8); break;  // FRAME: framing is only a read-ahead hint
      case '.': {                    // STOP
        if (stack_.empty()) malformed("stops with nothing on its stack");
        return stack_.back();
      }
      case '(':  // MARK
        if (marks_.size() >= kMaxStack) malformed("opens too many marks");
        marks_.push_back(stack_.size());
        break;
      case '0': pop(); break;          // POP
      case '1': pop_to_mark(); break;  // POP_MARK
      case '2': push(top()); break;    // DUP
      case 'N': push(&none_); break;
      case 0x88: push(&true_); break;   // NEWTRUE
      case 0x89: push(&false_); break;  // NEWFALSE
      case 'J': {                       // BININT
        const uint32_t u = static_cast<uint32_t>(read_le(4));
        int32_t i;
        std::memcpy(&i, &u, sizeof i);
        push(make_int(i));
        break;
      }
      case 'K': push(make_int(read_u8())); break;                             // BININT1
      case 'M': push(make_int(static_cast<int64_t>(read_le(2)))); break;      // BININT2
      case 0x8a: push(make_long(read_u8())); break;                            // LONG1
      case 0x8b: {                                                             // LONG4
        const uint32_t n = static_cast<uint32_t>(read_le(4));
        if (n & 0x80000000u) malformed("holds an integer of negative length");
        push(make_long(n));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        const char* p = take(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(p[i]);
        Value* v = make(Kind::Float);
        std::memcpy(&v->real, &u, sizeof u);
        push(v);
        break;
      }
      case 'X': push(make_text(Kind::String, read_le(4))); break;    // BINUNICODE
      case 0x8c: push(make_text(Kind::String, read_u8())); break;    // SHORT_BINUNICODE
      case 0x8d: push(make_text(Kind::String, read_le(8))); break;   // BINUNICODE8
      case 'U': push(make_text(Kind::String, read_u8())); break;     // SHORT_BINSTRING (Python 2 str)
      case 'T': {                                                    // BINSTRING
        const uint32_t n = static_cast<uint32_t>(read_le(4));
        if (n & 0x80000000u) malformed("holds a string of negative length");
        push(make_text(Kind::String, n));
        break;
      }
      case 'B': push(make_text(Kind::Bytes, read_le(4))); break;    // BINBYTES
      case 'C': push(make_text(Kind::Bytes, read_u8())); break;     // SHORT_BINBYTES
      case 0x8e: push(make_text(Kind::Bytes, read_le(8))); break;   // BINBYTES8
      case ')': push(&empty_tuple_); break;                         // EMPTY_TUPLE
      case 't': push(make_tuple(pop_to_mark())); break;             // TUPLE
      case 0x85: {                                                  // TUPLE1
        Value* a = pop();
        push(make_tuple({a}));
        break;
      }
      case 0x86: {  // TUPLE2
        Value* b = pop();
        Value* a = pop();
        push(make_tuple({a, b}));
        break;
      }
      case 0x87: {  // TUPLE3
        Value* c = pop();
        Value* b = pop();
        Value* a = pop();
        push(make_tuple({a, b, c}));
        break;
      }
      case ']': push(make(Kind::List)); break;  // EMPTY_LIST
      case 'l': {                               // LIST
        Value* list = make(Kind::List);
        list->items = pop_to_mark();
        push(list);
        break;
      }
      case 'a': {  // APPEND
        Value* item = pop();
        Value* list = top();
        if (list->kind != Kind::List) malformed("appends to " + describe(*list) + ", which is not a list");
        list->items.push_back(item);
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Value*> items = pop_to_mark();
        Value* list = top();
        if (list->kind != Kind::List) malformed("appends to " + describe(*list) + ", which is not a list");
        list->items.insert(list->items.end(), items.begin(), items.end());
        break;
      }
      case '}': push(make(Kind::Dict)); break;  // EMPTY_DICT
      case 'd': {                               // DICT
        Value* dict = make(Kind::Dict);
        add_items(dict, pop_to_mark());
        push(dict);
        break;
      }
      case 's': {  // SETITEM
        Value* value = pop();
        Value* key = pop();
        add_items(top(), {key, value});
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Value*> kv = pop_to_mark();
        add_items(top(), kv);
        break;
      }
      case 'q': memo_put(read_u8(), top()); break;         // BINPUT
      case 'r': memo_put(read_le(4), top()); break;        // LONG_BINPUT
      case 0x94: memo_put(memo_.size(), top()); break;     // MEMOIZE
      case 'h': push(memo_get(read_u8())); break;          // BINGET
      case 'j': push(memo_get(read_le(4))); break;         // LONG_BINGET
      case 'c': {                                          // GLOBAL
        const std::string module = read_line();
        const std::string name = read_line();
        push(resolve_global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        if (module->kind != Kind::String || name->kind != Kind::String) malformed("names a global with non-strings");
        if (module->text.size() > kMaxGlobalName || name->text.size() > kMaxGlobalName) {
          malformed("names a global that is too long");
        }
        push(resolve_global(module->text, name->text));
        break;
      }
      case 'R': {  // REDUCE
        Value* args = pop();
        Value* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only an empty OrderedDict is harmless
        Value* args = pop();
        Value* cls = pop();
        if (cls->kind == Kind::Global && cls->global == GlobalId::OrderedDict && args->kind == Kind::Tuple &&
            args->items.empty()) {
          push(make(Kind::Dict));
          break;
        }
        throw Error("refusing to load '" + source_ + "': its pickle instantiates '" +
                        printable(cls->kind == Kind::Global ? cls->text : describe(*cls)) +
                        "' (only state dicts of tensors are allowed)",
                    kRefuseHint);
      }
      case 'b': {  // BUILD: obj.__setstate__(state). For the objects allowed here
                   // (dicts, tensors) the state is Python attributes such as an
                   // OrderedDict's _metadata, which weights do not need.
        pop();
        top();
        break;
      }
      case 'Q': {  // BINPERSID
        Value* pid = pop();
        if (!persistent_load_) malformed("refers to external data where none is allowed");
        StorageRef ref = persistent_load_(*pid);
        Value* v = make(Kind::Storage);
        v->integer = static_cast<int64_t>(storages_.size());
        storages_.push_back(std::move(ref));
        push(v);
        break;
      }
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        pos_ = op_pos;
        throw Error("refusing to load '" + source_ + "': its pickle uses opcode " + hex + " at byte " +
                        std::to_string(op_pos) + ", which plain state dicts never need",
                    kRefuseHint);
      }
    }
  }
}

}  // namespace tabby::pickle
