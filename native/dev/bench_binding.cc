// Kernel benchmark entry points (synchronous; the CLI runs them one at a time):
//   bench.fmaPeak(threads, ms) -> { gflops, cpuGflops, isa, threads, seconds }
//     Independent FMA chains on `threads` threads with the widest ISA the CPU has: the
//     machine's measured peak, the denominator of every efficiency figure.
//   bench.benchKernel(name, params, threads, minMs) -> { seconds, median, cpuSeconds, flops, peakBytes, repeats }
//     name: 'linear' {M, N, K, dtype} | 'gemm' {M, N, K, transA?, transB?} |
//           'conv2d' {B?, Cin, H, W, Cout, k?, stride?, dtype} |
//           'attention' {batch?, heads, nq, nk, headDim} | 'group_norm' {B?, C, HW, groups?, silu?}
//     seconds is the best of the repeats (median also given; cpuSeconds: least process CPU time of
//     a repeat, all threads summed); peakBytes counts the operand
//     tensors plus the GEMM packing workspace.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own "undefined vector" idiom.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define ND_HAVE_X86 1
#endif

#include "addon/convert.h"
#include "addon/registry.h"
#include "core/threadpool.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm_kernels.h"
#include "cpu/ops.h"

namespace nd::addon {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of the whole process (all threads): on a shared machine, time spent descheduled does
// not count, so cpu-based rates show what the kernels do while they run.
double process_cpu_seconds() {
#ifdef CLOCK_PROCESS_CPUTIME_ID
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#else
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
#endif
}

// ---- FMA peak -------------------------------------------------------------------------------
// Each call runs `iters` rounds of independent FMA chains (enough chains to cover the FMA
// latency × ports) and returns flops done; the result feeds a sink so nothing is optimised away.
constexpr int64_t kChunk = 1 << 16;

#ifdef ND_HAVE_X86
__attribute__((target("avx512f,fma"))) double fma_chunk_avx512(float* sink) {
  __m512 acc[16];
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps((float)i);
  for (int64_t n = 0; n < kChunk; ++n) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  for (int i = 1; i < 16; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  *sink += _mm512_reduce_add_ps(acc[0]);
  return (double)kChunk * 16 * 16 * 2;
}
__attribute__((target("avx2,fma"))) double fma_chunk_avx2(float* sink) {
  __m256 acc[12];
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps((float)i);
  for (int64_t n = 0; n < kChunk; ++n) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  float out[8];
  for (int i = 1; i < 12; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  _mm256_storeu_ps(out, acc[0]);
  *sink += out[0];
  return (double)kChunk * 12 * 8 * 2;
}
#endif
double fma_chunk_scalar(float* sink) {
  float acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = (float)i;
  for (int64_t n = 0; n < kChunk; ++n)
    for (int i = 0; i < 8; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  for (int i = 0; i < 8; ++i) *sink += acc[i];
  return (double)kChunk * 8 * 2;
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsNumber())
      fail_expected(code::kInvalidArgument, "(threads: number, ms: number)", "fmaPeak", "other arguments");
    const int threads = std::clamp(info[0].As<Napi::Number>().Int32Value(), 1, 256);
    const double ms = std::clamp(info[1].As<Napi::Number>().DoubleValue(), 1.0, 60000.0);
    const cpu::Isa isa = cpu::best_isa();
    double (*chunk)(float*) = fma_chunk_scalar;
#ifdef ND_HAVE_X86
    if (isa == cpu::Isa::Avx512)
      chunk = fma_chunk_avx512;
    else if (isa == cpu::Isa::Avx2)
      chunk = fma_chunk_avx2;
#endif
    std::vector<double> flops((size_t)threads, 0.0);
    std::vector<float> sinks((size_t)threads * 16, 0.f);
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    Clock::time_point start;
    auto body = [&](int t) {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      while (seconds_since(start) * 1000.0 < ms) flops[(size_t)t] += chunk(&sinks[(size_t)t * 16]);
    };
    std::vector<std::thread> workers;
    for (int t = 1; t < threads; ++t) workers.emplace_back(body, t);
    while (ready.load() < threads - 1) std::this_thread::yield();
    const double cpu0 = process_cpu_seconds();
    start = Clock::now();
    go.store(true);
    body(0);
    for (auto& w : workers) w.join();
    const double elapsed = seconds_since(start), cpu = process_cpu_seconds() - cpu0;
    double total = 0;
    for (double f : flops) total += f;
    Napi::Object o = Napi::Object::New(env);
    o.Set("gflops", total / elapsed / 1e9);
    o.Set("cpuGflops", total / std::max(cpu / threads, 1e-9) / 1e9);
    o.Set("isa", cpu::isa_name(isa));
    o.Set("threads", threads);
    o.Set("seconds", elapsed);
    o.Set("sink", sinks[0] == 12345.f ? 1 : 0);  // keeps the chains observable
    return o;
  });
}

// ---- kernel cases ---------------------------------------------------------------------------

ThreadPool& pool_of(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (float)((s >> 8) & 0xffff) / 32768.f - 1.f;
  }
  return v;
}

// Weight bytes in the requested dtype.
std::vector<uint16_t> narrow16(const std::vector<float>& w, DType t) {
  std::vector<uint16_t> out(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    if (t == DType::F16) {
      out[i] = f32_to_f16(w[i]);
    } else {
      uint32_t b;
      std::memcpy(&b, &w[i], 4);
      out[i] = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
    }
  }
  return out;
}

DType dtype_of(const Napi::Object& p) {
  Napi::Value v = p.Get("dtype");
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "f32";
  if (s == "f32" || s == "F32") return DType::F32;
  if (s == "f16" || s == "F16") return DType::F16;
  if (s == "bf16" || s == "BF16") return DType::BF16;
  fail_expected(code::kInvalidArgument, "'f32', 'f16' or 'bf16'", "params.dtype", "'" + s + "'");
}

int64_t opt_int(const Napi::Object& p, const char* key, int64_t fallback, int64_t max = int64_t(1) << 31) {
  return p.Get(key).IsUndefined() ? fallback : int_from_js(p, key, 0, max);
}

// Prepared case: run() does one call of the kernel.
struct Case {
  double flops = 0;
  double bytes = 0;
  std::function<void()> run;
  std::vector<std::vector<float>> f32;
  std::vector<uint16_t> w16;
};

double workspace_bytes(int threads) {
  const cpu::gemm::Kernels& k = cpu::gemm::active_kernels();
  return (double)threads * (double)(k.mc * k.kc + k.kc * k.nc) * 4.0;
}

std::unique_ptr<Case> make_case(const std::string& name, const Napi::Object& p, int threads) {
  ThreadPool& pool = pool_of(threads);
  auto c = std::make_unique<Case>();
  if (name == "linear" || name == "gemm") {
    const int64_t M = int_from_js(p, "M", 1, 1 << 20), N = int_from_js(p, "N", 1, 1 << 20),
                  K = int_from_js(p, "K", 1, 1 << 20);
    const DType dt = name == "gemm" ? DType::F32 : dtype_of(p);
    c->f32 = {random_floats((size_t)(M * K), 1), random_floats((size_t)(N * K), 2), std::vector<float>((size_t)(M * N)),
              random_floats((size_t)N, 3)};
    const void* w = c->f32[1].data();
    if (dt != DType::F32) {
      c->w16 = narrow16(c->f32[1], dt);
      std::vector<float>().swap(c->f32[1]);
      w = c->w16.data();
    }
    c->flops = 2.0 * M * N * K;
    c->bytes = 4.0 * (M * K + M * N + N) + (double)dtype_size(dt) * N * K + workspace_bytes(threads);
    Case* cp = c.get();
    if (name == "linear") {
      c->run = [cp, &pool, M, N, K, w, dt] {
        cpu::linear(pool, cp->f32[0].data(), M, K, K, {w, dt}, N, cp->f32[3].data(), cp->f32[2].data(), N);
      };
    } else {
      const bool ta = bool_from_js(p, "transA", false), tb = bool_from_js(p, "transB", true);
      c->run = [cp, &pool, M, N, K, w, ta, tb] {
        cpu::gemm_f32(pool, ta, tb, M, N, K, 1.f, cp->f32[0].data(), ta ? M : K, static_cast<const float*>(w),
                      tb ? K : N, 0.f, cp->f32[2].data(), N);
      };
    }
  } else if (name == "conv2d") {
    const int64_t B = opt_int(p, "B", 1), Cin = int_from_js(p, "Cin", 1, 1 << 16), H = int_from_js(p, "H", 1, 1 << 16),
                  W = int_from_js(p, "W", 1, 1 << 16), Cout = int_from_js(p, "Cout", 1, 1 << 16);
    const int k = (int)opt_int(p, "k", 3, 15), stride = (int)opt_int(p, "stride", 1, 8),
              pad = (int)opt_int(p, "pad", k / 2, 8);
    const DType dt = dtype_of(p);
    const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
    if (Ho < 1 || Wo < 1)
      fail_expected(code::kInvalidArgument, "an input larger than the kernel", "params", "too small");
    c->f32 = {random_floats((size_t)(B * Cin * H * W), 1), random_floats((size_t)(Cout * Cin * k * k), 2),
              std::vector<float>((size_t)(B * Cout * Ho * Wo)), random_floats((size_t)Cout, 3)};
    const void* w = c->f32[1].data();
    if (dt != DType::F32) {
      c->w16 = narrow16(c->f32[1], dt);
      std::vector<float>().swap(c->f32[1]);
      w = c->w16.data();
    }
    c->flops = 2.0 * B * Cout * Ho * Wo * Cin * k * k;
    c->bytes = 4.0 * (B * Cin * H * W + B * Cout * Ho * Wo + Cout) + (double)dtype_size(dt) * Cout * Cin * k * k +
               workspace_bytes(threads);
    Case* cp = c.get();
    c->run = [cp, &pool, B, Cin, H, W, w, dt, Cout, k, stride, pad] {
      cpu::conv2d(pool, cp->f32[0].data(), B, Cin, H, W, {w, dt}, Cout, k, k, stride, pad, cp->f32[3].data(),
                  cp->f32[2].data());
    };
  } else if (name == "attention") {
    const int64_t batch = opt_int(p, "batch", 1), heads = int_from_js(p, "heads", 1, 256),
                  nq = int_from_js(p, "nq", 1, 1 << 20), nk = int_from_js(p, "nk", 1, 1 << 20),
                  d = int_from_js(p, "headDim", 1, 1024);
    const int64_t C = heads * d;
    c->f32 = {random_floats((size_t)(batch * nq * C), 1), random_floats((size_t)(batch * nk * C), 2),
              random_floats((size_t)(batch * nk * C), 3), std::vector<float>((size_t)(batch * nq * C))};
    c->flops = 4.0 * batch * heads * nq * nk * d;
    c->bytes = 4.0 * (2 * batch * nq * C + 2 * batch * nk * C);
    Case* cp = c.get();
    c->run = [cp, &pool, batch, heads, nq, nk, d, C] {
      cpu::AttentionArgs a;
      a.q = cp->f32[0].data();
      a.k = cp->f32[1].data();
      a.v = cp->f32[2].data();
      a.out = cp->f32[3].data();
      a.batch = batch;
      a.heads = heads;
      a.nq = nq;
      a.nk = nk;
      a.head_dim = d;
      a.q_row = a.out_row = a.k_row = a.v_row = C;
      a.q_batch = a.out_batch = nq * C;
      a.k_batch = a.v_batch = nk * C;
      a.scale = 1.f / std::sqrt((float)d);
      cpu::attention(pool, a);
    };
  } else if (name == "group_norm") {
    const int64_t B = opt_int(p, "B", 1), C = int_from_js(p, "C", 1, 1 << 16), HW = int_from_js(p, "HW", 1, 1 << 26);
    const int groups = (int)opt_int(p, "groups", 32, 1 << 16);
    if (groups < 1 || C % groups)
      fail_expected(code::kInvalidArgument, "groups dividing C", "params.groups", std::to_string(groups));
    const bool silu = bool_from_js(p, "silu", true);
    c->f32 = {random_floats((size_t)(B * C * HW), 1), std::vector<float>((size_t)(B * C * HW)),
              random_floats((size_t)C, 2), random_floats((size_t)C, 3)};
    c->flops = 8.0 * B * C * HW;  // two statistics passes and the affine + SiLU, roughly
    c->bytes = 4.0 * (2 * B * C * HW + 2 * C);
    Case* cp = c.get();
    c->run = [cp, &pool, B, C, HW, groups, silu] {
      cpu::group_norm(pool, cp->f32[0].data(), cp->f32[1].data(), B, C, HW, groups, cp->f32[2].data(),
                      cp->f32[3].data(), 1e-5f, silu);
    };
  } else {
    fail_expected(code::kInvalidArgument, "'linear', 'gemm', 'conv2d', 'attention' or 'group_norm'", "name",
                  "'" + name + "'");
  }
  return c;
}

Napi::Value BenchKernel(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsObject() || !info[2].IsNumber() || !info[3].IsNumber())
      fail_expected(code::kInvalidArgument, "(name: string, params: object, threads: number, minMs: number)",
                    "benchKernel", "other arguments");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const int threads = std::clamp(info[2].As<Napi::Number>().Int32Value(), 1, 256);
    const double min_ms = std::clamp(info[3].As<Napi::Number>().DoubleValue(), 0.0, 600000.0);
    std::unique_ptr<Case> c = make_case(name, info[1].As<Napi::Object>(), threads);
    std::vector<double> times, cpu_times;
    double total = 0;
    // First call warms caches and page-faults the output; it counts when it alone exceeds minMs.
    for (;;) {
      const double cpu0 = process_cpu_seconds();
      const Clock::time_point t0 = Clock::now();
      c->run();
      const double s = seconds_since(t0);
      cpu_times.push_back(process_cpu_seconds() - cpu0);
      times.push_back(s);
      total += s;
      if ((total * 1000.0 >= min_ms && times.size() >= 3) || (times.size() == 1 && s * 1000.0 >= min_ms)) break;
      if (times.size() >= 10000) break;
    }
    if (times.size() > 1) {  // drop the warm-up
      times.erase(times.begin());
      cpu_times.erase(cpu_times.begin());
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    Napi::Object o = Napi::Object::New(env);
    o.Set("seconds", sorted.front());
    o.Set("median", sorted[sorted.size() / 2]);
    o.Set("cpuSeconds", *std::min_element(cpu_times.begin(), cpu_times.end()));
    o.Set("flops", c->flops);
    o.Set("peakBytes", c->bytes);
    o.Set("repeats", (double)times.size());
    o.Set("isa", cpu::isa_name(cpu::active_isa()));
    return o;
  });
}

void init(Napi::Env env, Napi::Object exports) {
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("fmaPeak", Napi::Function::New(env, FmaPeak));
  bench.Set("benchKernel", Napi::Function::New(env, BenchKernel));
  exports.Set("bench", bench);
}

ND_REGISTER_BINDING("bench", init);

}  // namespace
}  // namespace nd::addon
