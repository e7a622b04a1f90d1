// The CUDA entry points of a build without CUDA (node-gyp, prebuilds): each throws
// ERR_NO_CUDA so callers get one clear, typed answer. CMake leaves this file out of
// ND_WITH_CUDA builds, where native/cuda/cuda_binding.cc defines the real ones.
#include <napi.h>

#include "addon/registry.h"

#ifndef ND_WITH_CUDA

namespace nd::addon {
namespace {

Napi::Value NotBuilt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    fail(code::kNoCuda,
         "native-diffusion was not built with CUDA (build it with `npm run build:cuda` on a machine with the CUDA "
         "toolkit)");
  });
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New(env, NotBuilt, "cudaInfo"));
  exports.Set("cudaSelfTest", Napi::Function::New(env, NotBuilt, "cudaSelfTest"));
}

}  // namespace
}  // namespace nd::addon

ND_REGISTER_BINDING("cuda", nd::addon::Init);

#endif  // ND_WITH_CUDA
