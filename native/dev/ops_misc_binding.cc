// Synchronous test entry points for the attention, norm and elementwise kernels and their naive twins:
//   opsMisc.attention({ q, k, v, qOffset?, kOffset?, vOffset?, batch, heads, nq, nk, headDim,
//                       qRow?, kRow?, vRow?, qBatch?, kBatch?, vBatch?, scale, probs?, kTile?, ...common })
//       -> { out: [batch, nq, heads·headDim], probs?: [batch, nq, nk] }
//     q/k/v may be one buffer (packed qkv: offsets 0, C, 2C and row stride 3C); rows default to
//     heads·headDim and batch strides to n·row.
//   opsMisc.attentionScratchBytes({ batch, heads, nq, nk, headDim, probs?, kTile?, threads?, isa? }) -> number
//   opsMisc.groupNorm({ x, B, C, HW, groups, gamma?, beta?, eps, silu?, inPlace?, ...common }) -> Float32Array
//   opsMisc.layerNorm({ x, M, C, gamma?, beta?, eps, inPlace?, ...common }) -> Float32Array
//   opsMisc.activation({ op: 'silu' | 'gelu' | 'quick_gelu', x, ...common }) -> Float32Array
//   opsMisc.geglu({ x, M, N, ...common }) -> Float32Array [M, N]
//   opsMisc.add({ a, b, ...common }) -> Float32Array
//   opsMisc.upsampleNearest2x({ x, BC, H, W, ...common }) -> Float32Array [BC, 2H, 2W]
//   opsMisc.softmaxRows({ x, rows, cols, ...common }) -> Float32Array
//   opsMisc.kernelIsas() -> { best: string, available: string[] }
// common = { threads? (default 1: a ThreadPool of that size), reference? (the nd::ref:: twin), isa? }.
// isa pins the vectorised kernels to 'avx512' | 'avx2' | 'neon' | 'generic' for the call.
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "addon/convert.h"
#include "addon/registry.h"
#include "core/threadpool.h"
#include "cpu/attention.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::addon {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 31;
constexpr int64_t kMaxCount = int64_t(1) << 16;  // batch, heads, groups

[[noreturn]] void expected(const std::string& what, const std::string& name, const std::string& got) {
  fail_expected(code::kInvalidArgument, what, name, got);
}

Napi::Object options(const Napi::CallbackInfo& info, const char* fn) {
  if (!info[0].IsObject()) expected("an options object", fn, "another type");
  return info[0].As<Napi::Object>();
}

int64_t opt_int(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  return o.Get(key).IsUndefined() ? fallback : int_from_js(o, key, min, max);
}

std::string opt_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) expected("a string", key, "another type");
  return v.As<Napi::String>().Utf8Value();
}

F32View array_of(const Napi::Object& o, const char* key, size_t length) {
  F32View v = f32_from_js(o.Get(key), key);
  if (v.length != length)
    fail_expected(code::kShapeMismatch, "a Float32Array of length " + std::to_string(length), key,
                  "length " + std::to_string(v.length));
  return v;
}

const float* optional_array(const Napi::Object& o, const char* key, size_t length) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.IsNull() ? nullptr : array_of(o, key, length).data;
}

// Pins the kernel table for one call and restores the default after.
struct IsaScope {
  const cpu::KernelTable* table;
  explicit IsaScope(const std::string& name) {
    table = cpu::kernels_named(name.empty() ? "auto" : name.c_str());
    if (!table)
      expected("'avx512', 'avx2', 'neon', 'generic' or 'auto' (supported by this CPU)", "isa", "'" + name + "'");
    cpu::set_kernels_override(table);
  }
  ~IsaScope() { cpu::set_kernels_override(nullptr); }
};

struct Common {
  bool reference;
  int threads;
  std::string isa;
};
Common common(const Napi::Object& o) {
  return {bool_from_js(o, "reference", false), (int)opt_int(o, "threads", 1, 1, 256), opt_string(o, "isa", "")};
}

// ---- attention ---------------------------------------------------------------------------------

struct Operand {
  const float* base;
  int64_t row, batch;
};

// One of q/k/v: checks that every element the kernel will read lies inside the array.
Operand operand(const Napi::Object& o, const char* key, const char* offset_key, const char* row_key,
                const char* batch_key, int64_t batch, int64_t n, int64_t width) {
  const F32View a = f32_from_js(o.Get(key), key);
  const int64_t offset = opt_int(o, offset_key, 0, 0, kMaxDim);
  const int64_t row = opt_int(o, row_key, width, width, kMaxDim);
  const int64_t bstride = opt_int(o, batch_key, n * row, 0, int64_t(1) << 40);
  const int64_t end = offset + (batch - 1) * bstride + (n - 1) * row + width;  // one past the last element read
  if (end > (int64_t)a.length)
    fail_expected(code::kShapeMismatch, "a Float32Array of at least " + std::to_string(end) + " elements", key,
                  "length " + std::to_string(a.length));
  return {a.data + offset, row, bstride};
}

cpu::AttentionArgs attention_shape(const Napi::Object& o) {
  cpu::AttentionArgs a;
  a.batch = int_from_js(o, "batch", 1, kMaxCount);
  a.heads = int_from_js(o, "heads", 1, kMaxCount);
  a.nq = int_from_js(o, "nq", 1, kMaxDim);
  a.nk = int_from_js(o, "nk", 1, kMaxDim);
  a.head_dim = int_from_js(o, "headDim", 1, 4096);
  return a;
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "attention");
    const Common c = common(o);
    cpu::AttentionArgs a = attention_shape(o);
    const int64_t width = a.heads * a.head_dim;
    const Operand q = operand(o, "q", "qOffset", "qRow", "qBatch", a.batch, a.nq, width);
    const Operand k = operand(o, "k", "kOffset", "kRow", "kBatch", a.batch, a.nk, width);
    const Operand v = operand(o, "v", "vOffset", "vRow", "vBatch", a.batch, a.nk, width);
    a.q = q.base, a.q_row = q.row, a.q_batch = q.batch;
    a.k = k.base, a.k_row = k.row, a.k_batch = k.batch;
    a.v = v.base, a.v_row = v.row, a.v_batch = v.batch;
    a.scale = (float)number_from_js(o, "scale");
    const int64_t k_tile = opt_int(o, "kTile", 0, 0, kMaxDim);
    std::vector<float> out((size_t)(a.batch * a.nq * width));
    a.out = out.data(), a.out_row = width, a.out_batch = a.nq * width;
    std::vector<float> probs;
    if (bool_from_js(o, "probs", false)) {
      probs.resize((size_t)(a.batch * a.nq * a.nk));
      a.probs_mean = probs.data();
    }
    IsaScope scope(c.isa);
    if (c.reference) {
      cpu::validate_attention(a);
      ref::attention(a);
    } else {
      ThreadPool pool(c.threads);
      cpu::attention_with(*scope.table, pool, a, k_tile);
    }
    Napi::Object result = Napi::Object::New(info.Env());
    result.Set("out", f32_to_js(info.Env(), out.data(), out.size()));
    if (a.probs_mean) result.Set("probs", f32_to_js(info.Env(), probs.data(), probs.size()));
    return result;
  });
}

Napi::Value AttentionScratchBytes(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "attentionScratchBytes");
    const Common c = common(o);
    cpu::AttentionArgs a = attention_shape(o);
    static float dummy;
    if (bool_from_js(o, "probs", false)) a.probs_mean = &dummy;
    IsaScope scope(c.isa);
    const size_t bytes = cpu::attention_scratch_bytes(a, c.threads, *scope.table, opt_int(o, "kTile", 0, 0, kMaxDim));
    return Napi::Number::New(info.Env(), (double)bytes);
  });
}

// ---- norms, softmax, elementwise -----------------------------------------------------------------

Napi::Value GroupNorm(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "groupNorm");
    const Common c = common(o);
    const int64_t B = int_from_js(o, "B", 0, kMaxCount), C = int_from_js(o, "C", 1, kMaxDim),
                  HW = int_from_js(o, "HW", 0, kMaxDim);
    const int groups = (int)int_from_js(o, "groups", 1, kMaxCount);
    if (C % groups != 0) expected("a channel count divisible by groups", "C", std::to_string(C));
    const F32View x = array_of(o, "x", (size_t)(B * C * HW));
    const float* gamma = optional_array(o, "gamma", (size_t)C);
    const float* beta = optional_array(o, "beta", (size_t)C);
    const float eps = (float)number_from_js(o, "eps");
    const bool silu = bool_from_js(o, "silu", false), in_place = bool_from_js(o, "inPlace", false);
    std::vector<float> y(x.data, x.data + x.length);
    const float* src = in_place ? y.data() : x.data;
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::group_norm(src, y.data(), B, C, HW, groups, gamma, beta, eps, silu);
    } else {
      ThreadPool pool(c.threads);
      cpu::group_norm(pool, src, y.data(), B, C, HW, groups, gamma, beta, eps, silu);
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "layerNorm");
    const Common c = common(o);
    const int64_t M = int_from_js(o, "M", 0, kMaxDim), C = int_from_js(o, "C", 1, kMaxDim);
    const F32View x = array_of(o, "x", (size_t)(M * C));
    const float* gamma = optional_array(o, "gamma", (size_t)C);
    const float* beta = optional_array(o, "beta", (size_t)C);
    const float eps = (float)number_from_js(o, "eps");
    std::vector<float> y(x.data, x.data + x.length);
    const float* src = bool_from_js(o, "inPlace", false) ? y.data() : x.data;
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::layer_norm(src, y.data(), M, C, gamma, beta, eps);
    } else {
      ThreadPool pool(c.threads);
      cpu::layer_norm(pool, src, y.data(), M, C, gamma, beta, eps);
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value Activation(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "activation");
    const Common c = common(o);
    const std::string op = opt_string(o, "op", "");
    const F32View x = f32_from_js(o.Get("x"), "x");
    std::vector<float> y(x.data, x.data + x.length);
    const int64_t n = (int64_t)y.size();
    IsaScope scope(c.isa);
    ThreadPool pool(c.threads);
    if (op == "silu") {
      c.reference ? ref::silu(y.data(), n) : cpu::silu(pool, y.data(), n);
    } else if (op == "gelu") {
      c.reference ? ref::gelu(y.data(), n) : cpu::gelu(pool, y.data(), n);
    } else if (op == "quick_gelu") {
      c.reference ? ref::quick_gelu(y.data(), n) : cpu::quick_gelu(pool, y.data(), n);
    } else {
      expected("'silu', 'gelu' or 'quick_gelu'", "op", "'" + op + "'");
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value Geglu(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "geglu");
    const Common c = common(o);
    const int64_t M = int_from_js(o, "M", 0, kMaxDim), N = int_from_js(o, "N", 0, kMaxDim);
    const F32View x = array_of(o, "x", (size_t)(M * 2 * N));
    std::vector<float> y((size_t)(M * N));
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::geglu(x.data, y.data(), M, N);
    } else {
      ThreadPool pool(c.threads);
      cpu::geglu(pool, x.data, y.data(), M, N);
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "add");
    const Common c = common(o);
    const F32View a = f32_from_js(o.Get("a"), "a");
    const F32View b = array_of(o, "b", a.length);
    std::vector<float> y(a.data, a.data + a.length);  // y aliases a: the in-place form the U-Net uses
    if (c.reference) {
      ref::add(y.data(), b.data, y.data(), (int64_t)y.size());
    } else {
      ThreadPool pool(c.threads);
      cpu::add(pool, y.data(), b.data, y.data(), (int64_t)y.size());
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value UpsampleNearest2x(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "upsampleNearest2x");
    const Common c = common(o);
    const int64_t BC = int_from_js(o, "BC", 0, kMaxDim), H = int_from_js(o, "H", 0, 1 << 16),
                  W = int_from_js(o, "W", 0, 1 << 16);
    const F32View x = array_of(o, "x", (size_t)(BC * H * W));
    std::vector<float> y((size_t)(BC * 4 * H * W));
    if (c.reference) {
      ref::upsample_nearest2x(x.data, y.data(), BC, H, W);
    } else {
      ThreadPool pool(c.threads);
      cpu::upsample_nearest2x(pool, x.data, y.data(), BC, H, W);
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value SoftmaxRows(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Object o = options(info, "softmaxRows");
    const Common c = common(o);
    const int64_t rows = int_from_js(o, "rows", 0, kMaxDim), cols = int_from_js(o, "cols", 1, kMaxDim);
    const F32View x = array_of(o, "x", (size_t)(rows * cols));
    std::vector<float> y(x.data, x.data + x.length);
    IsaScope scope(c.isa);
    if (c.reference) {
      ref::softmax_rows(y.data(), rows, cols);
    } else {
      ThreadPool pool(c.threads);
      cpu::softmax_rows(pool, y.data(), rows, cols);
    }
    return f32_to_js(info.Env(), y.data(), y.size());
  });
}

Napi::Value KernelIsas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("best", cpu::kernels_best().name);
  Napi::Array available = Napi::Array::New(env);
  uint32_t i = 0;
  for (const char* name : {"avx512", "avx2", "neon", "generic"})
    if (cpu::kernels_named(name)) available.Set(i++, Napi::String::New(env, name));
  o.Set("available", available);
  return o;
}

void init(Napi::Env env, Napi::Object exports) {
  Napi::Object ops = Napi::Object::New(env);
  ops.Set("attention", Napi::Function::New(env, Attention));
  ops.Set("attentionScratchBytes", Napi::Function::New(env, AttentionScratchBytes));
  ops.Set("groupNorm", Napi::Function::New(env, GroupNorm));
  ops.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  ops.Set("activation", Napi::Function::New(env, Activation));
  ops.Set("geglu", Napi::Function::New(env, Geglu));
  ops.Set("add", Napi::Function::New(env, Add));
  ops.Set("upsampleNearest2x", Napi::Function::New(env, UpsampleNearest2x));
  ops.Set("softmaxRows", Napi::Function::New(env, SoftmaxRows));
  ops.Set("kernelIsas", Napi::Function::New(env, KernelIsas));
  exports.Set("opsMisc", ops);
}

ND_REGISTER_BINDING("ops_misc", init);

}  // namespace
}  // namespace nd::addon
