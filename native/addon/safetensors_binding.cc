// inspectSafetensors(path): the validated header of a safetensors file, for detection and
// inspection in TypeScript. All validation is SafetensorsFile's; this only converts.
#include <napi.h>

#include "addon/registry.h"
#include "core/safetensors.h"

namespace nd::addon {
namespace {

Napi::Value InspectSafetensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsString()) {
      fail_expected(code::kInvalidArgument, "a string", "path",
                    info.Length() < 1 ? "nothing" : "a " + std::string(info[0].IsNumber() ? "number" : "non-string"));
    }
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const auto file = SafetensorsFile::open(path);

    Napi::Object out = Napi::Object::New(env);
    out.Set("headerBytes", Napi::Number::New(env, (double)file->header_bytes()));
    out.Set("fileSize", Napi::Number::New(env, (double)file->file_size()));
    Napi::Array tensors = Napi::Array::New(env, file->entries().size());
    uint32_t i = 0;
    for (const SafetensorsEntry& e : file->entries()) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", Napi::String::New(env, e.name));
      t.Set("dtype", Napi::String::New(env, dtype_name(e.dtype)));
      Napi::Array shape = Napi::Array::New(env, e.shape.size());
      for (uint32_t d = 0; d < e.shape.size(); ++d) shape.Set(d, Napi::Number::New(env, (double)e.shape[d]));
      t.Set("shape", shape);
      Napi::Array offsets = Napi::Array::New(env, 2);
      offsets.Set(0u, Napi::Number::New(env, (double)e.begin));
      offsets.Set(1u, Napi::Number::New(env, (double)e.end));
      t.Set("dataOffsets", offsets);
      tensors.Set(i++, t);
    }
    out.Set("tensors", tensors);
    Napi::Object metadata = Napi::Object::New(env);
    // Defined, not assigned: a key such as "__proto__" becomes a plain own property.
    for (const auto& [k, v] : file->metadata())
      metadata.DefineProperty(Napi::PropertyDescriptor::Value(k, Napi::String::New(env, v), napi_enumerable));
    out.Set("metadata", metadata);
    return out;
  });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectSafetensors", Napi::Function::New(env, InspectSafetensors, "inspectSafetensors"));
}

}  // namespace
}  // namespace nd::addon

ND_REGISTER_BINDING("safetensors", nd::addon::Init);
