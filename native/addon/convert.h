// JS -> plain C++ conversion shared by the model bindings (the only place that
// reads Napi values for weights and typed arrays). Errors read
// "Expected <what> for <name> but received <value>".
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "core/weights.h"

namespace nd::addon {

// { files: string[], tensors: Array<[canonical, fileIndex, tensorName, rowStart?, rowEnd?]> } -> WeightStore
std::shared_ptr<WeightStore> weights_from_js(const Napi::Value& v);

// Float32Array -> pointer + length (no copy; valid while the JS value is referenced).
struct F32View {
  const float* data = nullptr;
  size_t length = 0;
};
F32View f32_from_js(const Napi::Value& v, const char* name);

int64_t int_from_js(const Napi::Object& o, const char* key, int64_t min, int64_t max);
double number_from_js(const Napi::Object& o, const char* key);
bool bool_from_js(const Napi::Object& o, const char* key, bool fallback);
std::vector<int64_t> int_array_from_js(const Napi::Object& o, const char* key);

Napi::Float32Array f32_to_js(Napi::Env env, const float* data, size_t n);

}  // namespace nd::addon
