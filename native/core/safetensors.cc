#include "core/safetensors.h"

#include <algorithm>
#include <cstring>

#include "core/json.h"

namespace nd {
namespace {

bool parse_dtype(const std::string& s, DType& out) {
  static const std::pair<const char*, DType> table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},     {"U8", DType::U8},   {"BOOL", DType::BOOL}};
  for (auto& [name, t] : table)
    if (s == name) {
      out = t;
      return true;
    }
  return false;
}

// A JSON value as written in a message: numbers and strings verbatim, other kinds by name.
std::string describe(const json::Value& v) {
  switch (v.kind) {
    case json::Value::Kind::Number: return v.is_integer ? std::to_string(v.integer) : std::to_string(v.number);
    case json::Value::Kind::String: return "\"" + v.string.substr(0, 40) + "\"";
    case json::Value::Kind::Null: return "null";
    case json::Value::Kind::Bool: return v.boolean ? "true" : "false";
    case json::Value::Kind::Array: return "an array";
    case json::Value::Kind::Object: return "an object";
  }
  return "?";
}

[[noreturn]] void bad(const std::string& label, const std::string& tensor, const std::string& what) {
  fail(code::kInvalidFile,
       "Invalid safetensors file " + label + (tensor.empty() ? "" : " (tensor \"" + tensor + "\")") + ": " + what);
}

constexpr uint64_t kMaxDim = (uint64_t(1) << 53) - 1;

}  // namespace

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto map = MappedFile::open(path);
  auto file = parse(map->data(), map->size(), path);
  file->map_ = std::move(map);
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse(const uint8_t* bytes, size_t size, const std::string& label) {
  if (size < 8) bad(label, "", "Expected at least 8 bytes (the header length) but received " + std::to_string(size));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n > kMaxHeaderBytes)
    bad(label, "",
        "Expected a header length of at most " + std::to_string(kMaxHeaderBytes) + " bytes but received " +
            std::to_string(n));
  if (n > size - 8)
    bad(label, "",
        "Expected a header of " + std::to_string(n) + " bytes but the file has only " + std::to_string(size - 8) +
            " after the length (truncated?)");
  if (n < 2) bad(label, "", "Expected a JSON object header but received " + std::to_string(n) + " bytes");

  const json::Value root = json::parse(reinterpret_cast<const char*>(bytes + 8), (size_t)n, label);
  if (root.kind != json::Value::Kind::Object) bad(label, "", "Expected a JSON object as the header");

  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = label;
  f->header_bytes_ = n;
  f->data_ = bytes + 8 + n;
  f->data_size_ = size - 8 - n;

  for (const auto& [name, v] : root.object) {
    if (name == "__metadata__") {
      if (v.kind != json::Value::Kind::Object) bad(label, "", "Expected an object for __metadata__");
      for (const auto& [k, mv] : v.object) {
        if (mv.kind != json::Value::Kind::String)
          bad(label, "", "Expected string values in __metadata__ (key \"" + k + "\")");
        f->metadata_[k] = mv.string;
      }
      continue;
    }
    if (f->index_.count(name)) bad(label, name, "duplicate tensor name");
    if (v.kind != json::Value::Kind::Object) bad(label, name, "Expected an object with dtype, shape and data_offsets");
    const json::Value* dt = v.get("dtype");
    const json::Value* shape = v.get("shape");
    const json::Value* offsets = v.get("data_offsets");
    if (!dt || dt->kind != json::Value::Kind::String) bad(label, name, "Expected a string dtype");
    if (!shape || shape->kind != json::Value::Kind::Array) bad(label, name, "Expected an array shape");
    if (!offsets || offsets->kind != json::Value::Kind::Array || offsets->array.size() != 2)
      bad(label, name, "Expected data_offsets as [begin, end]");
    SafetensorsEntry e;
    e.name = name;
    if (!parse_dtype(dt->string, e.dtype))
      fail(code::kUnsupported,
           "Unsupported dtype in " + label + " (tensor \"" + name +
               "\"): Expected one of F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL but received \"" + dt->string +
               "\"");
    if (shape->array.size() > 8)
      bad(label, name, "Expected at most 8 dimensions but received " + std::to_string(shape->array.size()));
    // Element count with overflow checks: each dimension and the product stay below 2^62, and
    // the byte size (count * 8 at most) below 2^64 - so the size comparison below cannot wrap.
    uint64_t count = 1;
    for (const auto& d : shape->array) {
      if (d.kind != json::Value::Kind::Number || !d.is_integer || d.integer < 0)
        bad(label, name, "Expected non-negative integer dimensions in shape but received " + describe(d));
      const uint64_t dim = (uint64_t)d.integer;
      // Bounded even when another dimension is 0 (an empty tensor), so every size stays exact in a JS number.
      if (dim > kMaxDim) bad(label, name, "Expected dimensions of at most 2^53 - 1 but received " + describe(d));
      if (dim != 0 && count > (uint64_t(1) << 60) / dim) bad(label, name, "shape element count overflows");
      count *= dim;
      e.shape.push_back(d.integer);
    }
    for (const auto& o : offsets->array)
      if (o.kind != json::Value::Kind::Number || !o.is_integer || o.integer < 0)
        bad(label, name, "Expected non-negative integer data_offsets but received " + describe(o));
    e.begin = (uint64_t)offsets->array[0].integer;
    e.end = (uint64_t)offsets->array[1].integer;
    if (e.end < e.begin)
      bad(label, name,
          "Expected data_offsets begin <= end but received [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
              "]");
    if (e.end > f->data_size_)
      bad(label, name,
          "Expected data_offsets within the " + std::to_string(f->data_size_) + "-byte data section but received end " +
              std::to_string(e.end) + " (truncated file?)");
    const uint64_t expected = count * dtype_size(e.dtype);
    if (e.end - e.begin != expected)
      bad(label, name,
          "Expected " + std::to_string(expected) + " bytes for shape " + shape_str(e.shape) + " " +
              dtype_name(e.dtype) + " but data_offsets span " + std::to_string(e.end - e.begin));
    f->index_[name] = f->entries_.size();
    f->entries_.push_back(std::move(e));
  }

  // No two tensors may share bytes. Compare each tensor with the furthest end seen so far (not just
  // its sorted neighbour: an empty tensor between two others must not hide their overlap).
  std::vector<const SafetensorsEntry*> sorted;
  for (auto& e : f->entries_)
    if (e.end > e.begin) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(),
            [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  const SafetensorsEntry* furthest = nullptr;
  for (const SafetensorsEntry* e : sorted) {
    if (furthest && e->begin < furthest->end) bad(label, e->name, "data overlaps tensor \"" + furthest->name + "\"");
    if (!furthest || e->end > furthest->end) furthest = e;
  }
  return f;
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) fail(code::kInvalidArgument, "No tensor \"" + name + "\" in " + path_);
  Tensor t;
  t.dtype = e->dtype;
  t.shape = e->shape;
  t.data = data_ + e->begin;
  t.owner = map_;
  return t;
}

}  // namespace nd
