#include "core/json.h"

#include <cmath>
#include <cstdlib>

#include "core/errors.h"

namespace nd::json {
namespace {

constexpr int kMaxDepth = 64;
// A header of 100 MB of "0," would otherwise become 50M Values (~5 GB): cap the count. Real
// checkpoint headers use about 10 values per tensor, so this allows some 200k tensors.
constexpr size_t kMaxValues = size_t(1) << 21;

class Parser {
 public:
  Parser(const char* s, size_t n, const std::string& label) : s_(s), n_(n), label_(label) {}

  Value document() {
    Value v = value(0);
    skip_ws();
    if (pos_ != n_) error("trailing characters after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) {
    fail(code::kInvalidFile, "Invalid JSON header in " + label_ + " at byte " + std::to_string(pos_) + ": " + what);
  }
  void skip_ws() {
    while (pos_ < n_ && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < n_ && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) error(std::string("expected '") + c + "'");
  }
  bool literal(const char* word) {
    size_t len = 0;
    while (word[len]) ++len;
    if (n_ - pos_ >= len && std::string(s_ + pos_, len) == word) {
      pos_ += len;
      return true;
    }
    return false;
  }

  Value value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than 64");
    if (++values_ > kMaxValues) error("more than " + std::to_string(kMaxValues) + " values");
    skip_ws();
    if (pos_ >= n_) error("unexpected end of input");
    Value v;
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.kind = Value::Kind::Object;
      if (eat('}')) return v;
      do {
        skip_ws();
        if (pos_ >= n_ || s_[pos_] != '"') error("expected a string key");
        std::string key = string();
        expect(':');
        v.object.emplace_back(std::move(key), value(depth + 1));
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      ++pos_;
      v.kind = Value::Kind::Array;
      if (eat(']')) return v;
      do v.array.push_back(value(depth + 1));
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Value::Kind::String;
      v.string = string();
    } else if (literal("true")) {
      v.kind = Value::Kind::Bool;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = Value::Kind::Bool;
    } else if (literal("null")) {
      v.kind = Value::Kind::Null;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number(v);
    } else {
      error(std::string("unexpected character '") + c + "'");
    }
    return v;
  }

  void number(Value& v) {
    const size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= n_ || !(s_[pos_] >= '0' && s_[pos_] <= '9')) error("malformed number");
    if (s_[pos_] == '0' && pos_ + 1 < n_ && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9') error("leading zero in number");
    while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ < n_ && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= n_ || !(s_[pos_] >= '0' && s_[pos_] <= '9')) error("malformed number");
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    if (pos_ < n_ && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < n_ && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= n_ || !(s_[pos_] >= '0' && s_[pos_] <= '9')) error("malformed number");
      while (pos_ < n_ && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    }
    const std::string text(s_ + start, pos_ - start);
    v.kind = Value::Kind::Number;
    v.number = std::strtod(text.c_str(), nullptr);
    if (integral) {
      // Exact integer parse with overflow detection.
      bool neg = text[0] == '-';
      uint64_t acc = 0;
      bool overflow = false;
      for (size_t i = neg ? 1 : 0; i < text.size(); ++i) {
        const uint64_t d = (uint64_t)(text[i] - '0');
        if (acc > (UINT64_MAX - d) / 10) {
          overflow = true;
          break;
        }
        acc = acc * 10 + d;
      }
      if (!overflow && acc <= (uint64_t)INT64_MAX) {
        v.is_integer = true;
        v.integer = neg ? -(int64_t)acc : (int64_t)acc;
      }
    }
  }

  void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += (char)cp;
    } else if (cp < 0x800) {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    } else {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (n_ - pos_ < 4) error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= (uint32_t)(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= (uint32_t)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= (uint32_t)(c - 'A' + 10);
      else
        error("bad hex digit in \\u escape");
    }
    return v;
  }

  std::string string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= n_) error("unterminated string");
      const unsigned char c = (unsigned char)s_[pos_++];
      if (c == '"') return out;
      if (c < 0x20) error("control character in string");
      if (c != '\\') {
        out += (char)c;
        continue;
      }
      if (pos_ >= n_) error("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (n_ - pos_ >= 6 && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
              pos_ += 2;
              const uint32_t lo = hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) error("invalid surrogate pair");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              error("lone surrogate");
            }
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error("lone surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: error("invalid escape");
      }
    }
  }

  const char* s_;
  size_t n_;
  size_t pos_ = 0;
  size_t values_ = 0;
  const std::string& label_;
};

}  // namespace

Value parse(const char* text, size_t size, const std::string& label) { return Parser(text, size, label).document(); }

}  // namespace nd::json
