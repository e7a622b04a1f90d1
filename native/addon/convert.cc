#include "addon/convert.h"

#include <cmath>
#include <cstring>

namespace nd::addon {
namespace {
[[noreturn]] void expected(const std::string& what, const std::string& name, const std::string& got) {
  fail_expected(code::kInvalidArgument, what, name, got);
}
std::string type_of(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return std::to_string(v.As<Napi::Number>().DoubleValue());
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array";
  if (v.IsTypedArray()) return "a typed array";
  return "an object";
}
}  // namespace

std::shared_ptr<WeightStore> weights_from_js(const Napi::Value& v) {
  if (!v.IsObject()) expected("an object { files, tensors }", "weights", type_of(v));
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value files = o.Get("files"), tensors = o.Get("tensors");
  if (!files.IsArray()) expected("an array of paths", "weights.files", type_of(files));
  if (!tensors.IsArray()) expected("an array of [name, fileIndex, tensorName]", "weights.tensors", type_of(tensors));
  auto store = std::make_shared<WeightStore>();
  Napi::Array fa = files.As<Napi::Array>();
  for (uint32_t i = 0; i < fa.Length(); ++i) {
    Napi::Value p = fa.Get(i);
    if (!p.IsString()) expected("a path string", "weights.files[" + std::to_string(i) + "]", type_of(p));
    store->add_file(p.As<Napi::String>().Utf8Value());
  }
  Napi::Array ta = tensors.As<Napi::Array>();
  for (uint32_t i = 0; i < ta.Length(); ++i) {
    Napi::Value e = ta.Get(i);
    const std::string name = "weights.tensors[" + std::to_string(i) + "]";
    const uint32_t len = e.IsArray() ? e.As<Napi::Array>().Length() : 0;
    if (len != 3 && len != 5)
      expected("[name, fileIndex, tensorName] or [name, fileIndex, tensorName, rowStart, rowEnd]", name, type_of(e));
    Napi::Array t = e.As<Napi::Array>();
    if (!t.Get(0u).IsString() || !t.Get(1u).IsNumber() || !t.Get(2u).IsString())
      expected("[string, number, string]", name, "other types");
    const double fi = t.Get(1u).As<Napi::Number>().DoubleValue();
    if (!(fi >= 0) || fi != std::floor(fi)) expected("a non-negative integer file index", name, std::to_string(fi));
    int64_t rows[2] = {-1, -1};
    if (len == 5) {
      for (uint32_t k = 0; k < 2; ++k) {
        Napi::Value r = t.Get(3u + k);
        const double d = r.IsNumber() ? r.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 0) || d != std::floor(d) || d > 1e15) expected("non-negative integer row bounds", name, type_of(r));
        rows[k] = (int64_t)d;
      }
    }
    store->map(t.Get(0u).As<Napi::String>().Utf8Value(), (size_t)fi, t.Get(2u).As<Napi::String>().Utf8Value(), rows[0],
               rows[1]);
  }
  return store;
}

F32View f32_from_js(const Napi::Value& v, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    expected("a Float32Array", name, type_of(v));
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  return {a.Data(), a.ElementLength()};
}

int64_t int_from_js(const Napi::Object& o, const char* key, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) expected("an integer", key, type_of(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < (double)min || d > (double)max)
    expected("an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", key, std::to_string(d));
  return (int64_t)d;
}

double number_from_js(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) expected("a number", key, type_of(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) expected("a finite number", key, std::to_string(d));
  return d;
}

bool bool_from_js(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) expected("a boolean", key, type_of(v));
  return v.As<Napi::Boolean>().Value();
}

std::vector<int64_t> int_array_from_js(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) expected("an array of integers", key, type_of(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != std::floor(d))
      expected("an integer", std::string(key) + "[" + std::to_string(i) + "]", type_of(e));
    out.push_back((int64_t)d);
  }
  return out;
}

Napi::Float32Array f32_to_js(Napi::Env env, const float* data, size_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), data, n * sizeof(float));
  return a;
}

}  // namespace nd::addon
