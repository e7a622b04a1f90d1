// AArch64 Advanced SIMD (NEON) vector primitives (4 f32 lanes, 32 registers) for the kernels in
// cpu/kernels/*.inc. NEON is part of the AArch64 base ISA, so no target attribute or run-time check:
// kernels.cc hands this table out on every aarch64 build (Linux, macOS, Windows on Arm).
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#define ND_TARGET
#define ND_INLINE inline __attribute__((always_inline))
#define ND_UNROLL _Pragma("GCC unroll 16")

namespace nd::cpu::isa_neon {

constexpr int kLanes = 4;
constexpr int kVectorRegisters = 32;
using Vf = float32x4_t;

ND_INLINE Vf vload(const float* p) { return vld1q_f32(p); }
ND_INLINE void vstore(float* p, Vf v) { vst1q_f32(p, v); }
// First n lanes (0 < n < kLanes); the rest read as zero and are never touched in memory.
ND_INLINE Vf vload_n(const float* p, int n) {
  float t[kLanes] = {0.f, 0.f, 0.f, 0.f};
  std::memcpy(t, p, (size_t)n * sizeof(float));
  return vld1q_f32(t);
}
ND_INLINE void vstore_n(float* p, Vf v, int n) {
  float t[kLanes];
  vst1q_f32(t, v);
  std::memcpy(p, t, (size_t)n * sizeof(float));
}
// Hint that the cache line at p is read (write: written) soon.
ND_INLINE void vprefetch(const void* p) { __builtin_prefetch(p, 0, 3); }
ND_INLINE void vprefetch_write(void* p) { __builtin_prefetch(p, 1, 3); }
ND_INLINE Vf vset1(float x) { return vdupq_n_f32(x); }
ND_INLINE Vf vzero() { return vdupq_n_f32(0.f); }
ND_INLINE Vf vadd(Vf a, Vf b) { return vaddq_f32(a, b); }
ND_INLINE Vf vsub(Vf a, Vf b) { return vsubq_f32(a, b); }
ND_INLINE Vf vmul(Vf a, Vf b) { return vmulq_f32(a, b); }
ND_INLINE Vf vdiv(Vf a, Vf b) { return vdivq_f32(a, b); }
ND_INLINE Vf vfma(Vf a, Vf b, Vf c) { return vfmaq_f32(c, a, b); }   // a*b + c (fused)
ND_INLINE Vf vfnma(Vf a, Vf b, Vf c) { return vfmsq_f32(c, a, b); }  // c - a*b (fused)
ND_INLINE Vf vmax(Vf a, Vf b) { return vmaxq_f32(a, b); }
ND_INLINE Vf vmin(Vf a, Vf b) { return vminq_f32(a, b); }
ND_INLINE Vf vabs(Vf a) { return vabsq_f32(a); }
ND_INLINE float vsum(Vf a) { return vaddvq_f32(a); }
ND_INLINE float vmaxall(Vf a) { return vmaxvq_f32(a); }
// Round to nearest integer (ties to even).
ND_INLINE Vf vround(Vf x) { return vrndnq_f32(x); }
// p * 2^n for integral n in [-127, 128] (callers clamp): n = -127 gives 0, n = 128 gives inf.
ND_INLINE Vf vscale2(Vf p, Vf n) {
  const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(bits));
}
// x < 0 ? a : b
ND_INLINE Vf vselect_neg(Vf x, Vf a, Vf b) { return vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.f)), a, b); }

}  // namespace nd::cpu::isa_neon
