// Synchronous test entry points for the GEMM / convolution kernels and their naive twins:
//   opsGemm.linear({ x, M, K, w, dtype, N, bias?, y?, accumulate?, threads?, reference?, isa? }) -> Float32Array
//   opsGemm.gemm({ transA, transB, M, N, K, alpha, A, B, beta, C?, threads?, reference?, isa? }) -> Float32Array
//   opsGemm.conv2d({ x, B, Cin, H, W, w, dtype, Cout, kh, kw, stride, pad, bias?, threads?, reference?, isa? })
//   opsGemm.cpuFeatures() -> { best, active, avx2, fma, f16c, avx512f, ... }
// Weights arrive as a Float32Array and are narrowed to the named dtype (F32/F16/BF16) here, so
// tests exercise the real widening paths. `isa` caps the dispatch ('scalar' | 'avx2' | 'avx512').
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon/convert.h"
#include "addon/registry.h"
#include "core/threadpool.h"
#include "cpu/cpu_features.h"
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::addon {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;

// A weight narrowed to its dtype; keeps the bytes alive for the call.
struct OwnedWeight {
  std::vector<uint8_t> bytes;
  cpu::WeightRef ref;
};

uint16_t to_bf16(float f) {  // round to nearest even, NaN kept quiet
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u);
  return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

OwnedWeight narrow(const F32View& w, const std::string& dtype) {
  OwnedWeight o;
  if (dtype == "F32" || dtype == "f32") {
    o.bytes.resize(w.length * 4);
    if (w.length) std::memcpy(o.bytes.data(), w.data, w.length * 4);
    o.ref = {o.bytes.data(), DType::F32};
  } else if (dtype == "F16" || dtype == "f16" || dtype == "BF16" || dtype == "bf16") {
    const bool half = dtype == "F16" || dtype == "f16";
    o.bytes.resize(w.length * 2 + 1);  // +1: an odd start exercises unaligned weight loads
    uint16_t tmp;
    for (size_t i = 0; i < w.length; ++i) {
      tmp = half ? f32_to_f16(w.data[i]) : to_bf16(w.data[i]);
      std::memcpy(o.bytes.data() + 1 + 2 * i, &tmp, 2);
    }
    o.ref = {o.bytes.data() + 1, half ? DType::F16 : DType::BF16};
  } else {
    fail_expected(code::kInvalidArgument, "'F32', 'F16' or 'BF16'", "dtype", "'" + dtype + "'");
  }
  return o;
}

std::string string_from_js(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) fail_expected(code::kInvalidArgument, "a string", key, "another type");
  return v.As<Napi::String>().Utf8Value();
}

F32View array_of(const Napi::Object& o, const char* key, size_t expected_length) {
  F32View v = f32_from_js(o.Get(key), key);
  if (v.length != expected_length)
    fail_expected(code::kShapeMismatch, "a Float32Array of length " + std::to_string(expected_length), key,
                  "length " + std::to_string(v.length));
  return v;
}

const float* optional_array(const Napi::Object& o, const char* key, size_t expected_length) {
  if (o.Get(key).IsUndefined() || o.Get(key).IsNull()) return nullptr;
  return array_of(o, key, expected_length).data;
}

// Caps the kernel ISA for one call and restores the default after.
struct IsaScope {
  explicit IsaScope(const std::string& name) {
    if (name == "scalar")
      cpu::set_isa_limit(cpu::Isa::Scalar);
    else if (name == "avx2")
      cpu::set_isa_limit(cpu::Isa::Avx2);
    else if (name == "avx512" || name.empty() || (name == "neon" && cpu::best_isa() == cpu::Isa::Neon))
      cpu::set_isa_limit(cpu::Isa::Avx512);  // no cap (on AArch64: NEON)
    else
      fail_expected(code::kInvalidArgument, "'scalar', 'avx2', 'avx512' or (on AArch64) 'neon'", "isa",
                    "'" + name + "'");
  }
  ~IsaScope() { cpu::set_isa_limit(cpu::Isa::Avx512); }
};

struct CommonOptions {
  bool reference;
  int threads;
  std::string isa;
};
CommonOptions common(const Napi::Object& o) {
  CommonOptions c;
  c.reference = bool_from_js(o, "reference", false);
  c.threads = o.Get("threads").IsUndefined() ? 1 : (int)int_from_js(o, "threads", 1, 256);
  c.isa = string_from_js(o, "isa", "");
  return c;
}

Napi::Value Linear(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail_expected(code::kInvalidArgument, "an options object", "linear", "another type");
    Napi::Object o = info[0].As<Napi::Object>();
    const CommonOptions c = common(o);
    const int64_t M = int_from_js(o, "M", 0, kMaxDim), K = int_from_js(o, "K", 0, kMaxDim),
                  N = int_from_js(o, "N", 0, kMaxDim);
    const F32View x = array_of(o, "x", (size_t)(M * K));
    const OwnedWeight w = narrow(array_of(o, "w", (size_t)(N * K)), string_from_js(o, "dtype", "F32"));
    const float* bias = optional_array(o, "bias", (size_t)N);
    const bool accumulate = bool_from_js(o, "accumulate", false);
    std::vector<float> y((size_t)(M * N), 0.f);
    if (const float* y0 = optional_array(o, "y", (size_t)(M * N))) std::memcpy(y.data(), y0, y.size() * 4);
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::linear(x.data, M, K, K, w.ref, N, bias, y.data(), N, accumulate);
    } else {
      ThreadPool pool(c.threads);
      cpu::linear(pool, x.data, M, K, K, w.ref, N, bias, y.data(), N, accumulate);
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail_expected(code::kInvalidArgument, "an options object", "gemm", "another type");
    Napi::Object o = info[0].As<Napi::Object>();
    const CommonOptions c = common(o);
    const bool ta = bool_from_js(o, "transA", false), tb = bool_from_js(o, "transB", false);
    const int64_t M = int_from_js(o, "M", 0, kMaxDim), N = int_from_js(o, "N", 0, kMaxDim),
                  K = int_from_js(o, "K", 0, kMaxDim);
    const float alpha = (float)number_from_js(o, "alpha"), beta = (float)number_from_js(o, "beta");
    const F32View A = array_of(o, "A", (size_t)(M * K)), B = array_of(o, "B", (size_t)(K * N));
    std::vector<float> C((size_t)(M * N), 0.f);
    if (const float* c0 = optional_array(o, "C", (size_t)(M * N))) std::memcpy(C.data(), c0, C.size() * 4);
    const int64_t lda = ta ? M : K, ldb = tb ? K : N;
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::gemm_f32(ta, tb, M, N, K, alpha, A.data, lda, B.data, ldb, beta, C.data(), N);
    } else {
      ThreadPool pool(c.threads);
      cpu::gemm_f32(pool, ta, tb, M, N, K, alpha, A.data, lda, B.data, ldb, beta, C.data(), N);
    }
    return f32_to_js(info.Env(), C.data(), C.size());
  });
}

Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsObject()) fail_expected(code::kInvalidArgument, "an options object", "conv2d", "another type");
    Napi::Object o = info[0].As<Napi::Object>();
    const CommonOptions c = common(o);
    const int64_t B = int_from_js(o, "B", 1, kMaxDim), Cin = int_from_js(o, "Cin", 1, kMaxDim),
                  H = int_from_js(o, "H", 1, kMaxDim), W = int_from_js(o, "W", 1, kMaxDim),
                  Cout = int_from_js(o, "Cout", 1, kMaxDim);
    const int kh = (int)int_from_js(o, "kh", 1, 64), kw = (int)int_from_js(o, "kw", 1, 64),
              stride = (int)int_from_js(o, "stride", 1, 64), pad = (int)int_from_js(o, "pad", 0, 64);
    const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
    if (H + 2 * pad < kh || W + 2 * pad < kw)
      fail_expected(code::kInvalidArgument, "an input at least as large as the kernel", "conv2d input",
                    std::to_string(H) + "x" + std::to_string(W));
    const F32View x = array_of(o, "x", (size_t)(B * Cin * H * W));
    const OwnedWeight w = narrow(array_of(o, "w", (size_t)(Cout * Cin * kh * kw)), string_from_js(o, "dtype", "F32"));
    const float* bias = optional_array(o, "bias", (size_t)Cout);
    std::vector<float> y((size_t)(B * Cout * Ho * Wo));
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::conv2d(x.data, B, Cin, H, W, w.ref, Cout, kh, kw, stride, pad, bias, y.data());
    } else {
      ThreadPool pool(c.threads);
      cpu::conv2d(pool, x.data, B, Cin, H, W, w.ref, Cout, kh, kw, stride, pad, bias, y.data());
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const cpu::CpuFeatures& f = cpu::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("best", cpu::isa_name(cpu::best_isa()));
  o.Set("active", cpu::isa_name(cpu::active_isa()));
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("f16c", f.f16c);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
  o.Set("avx512vl", f.avx512vl);
  o.Set("avx512dq", f.avx512dq);
  o.Set("avx512vnni", f.avx512vnni);
  o.Set("avx512bf16", f.avx512bf16);
  return o;
}

void init(Napi::Env env, Napi::Object exports) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("linear", Napi::Function::New(env, Linear));
  ops.Set("gemm", Napi::Function::New(env, Gemm));
  ops.Set("conv2d", Napi::Function::New(env, Conv2d));
  ops.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("opsGemm", ops);
}

ND_REGISTER_BINDING("ops_gemm", init);

}  // namespace
}  // namespace nd::addon
