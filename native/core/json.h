// A small strict JSON parser for checkpoint headers and configs. Input is untrusted:
// nesting depth, number ranges and string escapes are all checked.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nd::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  bool is_integer = false;  // written without fraction/exponent and fits in int64
  int64_t integer = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;  // in file order

  const Value* get(const std::string& key) const {
    for (auto& kv : object)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
};

// Throws nd::Error(ERR_INVALID_FILE) with `label` and the byte offset on malformed input.
Value parse(const char* text, size_t size, const std::string& label);

}  // namespace nd::json
