// Portable vector primitives: 8 f32 lanes as a plain array, for any CPU and
// compiler (GCC/Clang auto-vectorise the lane loops to SSE2 or NEON). Same
// interface as avx512.h / avx2.h so cpu/kernels/*.inc compile unchanged.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#define ND_TARGET
#if defined(__GNUC__)
#define ND_INLINE inline __attribute__((always_inline))
#define ND_UNROLL _Pragma("GCC unroll 16")
#else
#define ND_INLINE inline
#define ND_UNROLL
#endif

namespace nd::cpu::isa_generic {

constexpr int kLanes = 8;
constexpr int kVectorRegisters = 8;  // a Vf spans several machine registers: keep register blocks small
struct Vf {
  float v[kLanes];
};

#define ND_LANES(expr)                              \
  Vf r;                                             \
  for (int i = 0; i < kLanes; ++i) r.v[i] = (expr); \
  return r

ND_INLINE Vf vload(const float* p) {
  Vf r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
ND_INLINE void vstore(float* p, Vf v) { std::memcpy(p, v.v, sizeof v.v); }
ND_INLINE Vf vload_n(const float* p, int n) { ND_LANES(i < n ? p[i] : 0.f); }
ND_INLINE void vstore_n(float* p, Vf v, int n) {
  for (int i = 0; i < n; ++i) p[i] = v.v[i];
}
// Hint that the cache line at p is read (write: written) soon.
#if defined(__GNUC__)
ND_INLINE void vprefetch(const void* p) { __builtin_prefetch(p, 0, 3); }
ND_INLINE void vprefetch_write(void* p) { __builtin_prefetch(p, 1, 3); }
#else
ND_INLINE void vprefetch(const void*) {}
ND_INLINE void vprefetch_write(void*) {}
#endif
ND_INLINE Vf vset1(float x) { ND_LANES(x); }
ND_INLINE Vf vzero() { ND_LANES(0.f); }
ND_INLINE Vf vadd(Vf a, Vf b) { ND_LANES(a.v[i] + b.v[i]); }
ND_INLINE Vf vsub(Vf a, Vf b) { ND_LANES(a.v[i] - b.v[i]); }
ND_INLINE Vf vmul(Vf a, Vf b) { ND_LANES(a.v[i] * b.v[i]); }
ND_INLINE Vf vdiv(Vf a, Vf b) { ND_LANES(a.v[i] / b.v[i]); }
ND_INLINE Vf vfma(Vf a, Vf b, Vf c) { ND_LANES(a.v[i] * b.v[i] + c.v[i]); }
ND_INLINE Vf vfnma(Vf a, Vf b, Vf c) { ND_LANES(c.v[i] - a.v[i] * b.v[i]); }
ND_INLINE Vf vmax(Vf a, Vf b) { ND_LANES(a.v[i] > b.v[i] ? a.v[i] : b.v[i]); }
ND_INLINE Vf vmin(Vf a, Vf b) { ND_LANES(a.v[i] < b.v[i] ? a.v[i] : b.v[i]); }
ND_INLINE Vf vabs(Vf a) { ND_LANES(std::fabs(a.v[i])); }
ND_INLINE float vsum(Vf a) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += a.v[i];
  return s;
}
ND_INLINE float vmaxall(Vf a) {
  float m = a.v[0];
  for (int i = 1; i < kLanes; ++i) m = a.v[i] > m ? a.v[i] : m;
  return m;
}
// Round to nearest (ties to even in the default rounding mode) for |x| < 2^22, which callers guarantee.
ND_INLINE Vf vround(Vf x) { ND_LANES((x.v[i] + 12582912.f) - 12582912.f); }
// p * 2^n for integral n in [-127, 128] (callers clamp): n = -127 gives 0, n = 128 gives inf.
ND_INLINE Vf vscale2(Vf p, Vf n) {
  Vf r;
  for (int i = 0; i < kLanes; ++i) {
    const uint32_t bits = (uint32_t)((int32_t)n.v[i] + 127) << 23;
    float s;
    std::memcpy(&s, &bits, sizeof s);
    r.v[i] = p.v[i] * s;
  }
  return r;
}
ND_INLINE Vf vselect_neg(Vf x, Vf a, Vf b) { ND_LANES(x.v[i] < 0.f ? a.v[i] : b.v[i]); }

#undef ND_LANES

}  // namespace nd::cpu::isa_generic
