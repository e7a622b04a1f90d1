// Module entry: runs every registered binding init, plus build/runtime facts.
#include <napi.h>

#include "addon/registry.h"
#include "core/threadpool.h"

namespace nd::addon {

std::vector<std::pair<const char*, InitFn>>& registry() {
  static std::vector<std::pair<const char*, InitFn>> r;
  return r;
}

Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  const auto* nd_error = dynamic_cast<const Error*>(&e);
  err.Value().Set("code", Napi::String::New(env, nd_error ? nd_error->code() : std::string(code::kInternal)));
  return err;
}

namespace {

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("hardwareThreads", ThreadPool::hardware_threads());
#ifdef ND_WITH_CUDA
  o.Set("cuda", true);
#else
  o.Set("cuda", false);
#endif
  Napi::Array names = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& [name, fn] : registry()) names.Set(i++, Napi::String::New(env, name));
  o.Set("bindings", names);
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  for (auto& [name, fn] : registry()) fn(env, exports);
  return exports;
}

}  // namespace nd::addon

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return nd::addon::Init(env, exports); }
NODE_API_MODULE(native_diffusion, InitModule)
