// cudaInfo() / cudaSelfTest(). In a build with the CUDA backend (ND_WITH_CUDA, CMake) they query the
// device layer in native/backend/cuda; in a build without it (node-gyp, prebuilds) each throws
// ERR_NO_CUDA, so callers get one clear, typed answer.
#include <napi.h>

#include "addon/registry.h"
#ifdef ND_WITH_CUDA
#include "backend/cuda/device.h"
#include "backend/cuda/selftest.h"
#endif

namespace nd::addon {
namespace {

#ifdef ND_WITH_CUDA

Napi::Value CudaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const cuda::RuntimeInfo rt = cuda::query_runtime();
    Napi::Object o = Napi::Object::New(env);
    o.Set("built", true);
    o.Set("runtimeVersion", rt.runtime_version);
    o.Set("driverVersion", rt.driver_version);
    Napi::Array devices = Napi::Array::New(env, rt.devices.size());
    for (uint32_t i = 0; i < rt.devices.size(); ++i) {
      const cuda::DeviceInfo& d = rt.devices[i];
      Napi::Object dev = Napi::Object::New(env);
      dev.Set("index", d.index);
      dev.Set("name", d.name);
      dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
      dev.Set("totalMemory", (double)d.total_memory);
      dev.Set("freeMemory", (double)d.free_memory);
      dev.Set("multiprocessors", d.multiprocessors);
      devices.Set(i, dev);
    }
    o.Set("devices", devices);
    if (!rt.error.empty()) o.Set("error", rt.error);
    return o;
  });
}

Napi::Value CudaSelfTest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const cuda::SelfTestResult r = cuda::self_test();
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", r.device);
    o.Set("gemmF16wMaxAbsErr", r.gemm_f16w_max_abs_err);
    o.Set("gemmF32wMaxAbsErr", r.gemm_f32w_max_abs_err);
    o.Set("elementwiseMaxAbsErr", r.elementwise_max_abs_err);
    o.Set("gemmGflops", r.gemm_gflops);
    return o;
  });
}

#else
Napi::Value NotBuilt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    fail(code::kNoCuda,
         "native-diffusion was not built with CUDA (build it with `npm run build:cuda` on a machine with the CUDA "
         "toolkit)");
  });
}
Napi::Value (*const CudaInfo)(const Napi::CallbackInfo&) = NotBuilt;
Napi::Value (*const CudaSelfTest)(const Napi::CallbackInfo&) = NotBuilt;
#endif  // ND_WITH_CUDA

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfo, "cudaInfo"));
  exports.Set("cudaSelfTest", Napi::Function::New(env, CudaSelfTest, "cudaSelfTest"));
}

}  // namespace
}  // namespace nd::addon

ND_REGISTER_BINDING("cuda", nd::addon::Init);
