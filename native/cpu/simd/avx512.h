// AVX-512 vector primitives (16 f32 lanes) for the kernels in cpu/kernels/*.inc.
// Every function carries the target attribute, so this header compiles in a
// baseline x86-64 build and runs only where kernels.cc dispatched to it.
#pragma once
#include <immintrin.h>

#include <cstdint>

#define ND_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define ND_INLINE inline __attribute__((always_inline)) ND_TARGET
#define ND_UNROLL _Pragma("GCC unroll 16")

namespace nd::cpu::isa_avx512 {

constexpr int kLanes = 16;
constexpr int kVectorRegisters = 32;
using Vf = __m512;

ND_INLINE Vf vload(const float* p) { return _mm512_loadu_ps(p); }
ND_INLINE void vstore(float* p, Vf v) { _mm512_storeu_ps(p, v); }
ND_INLINE __mmask16 lane_mask(int n) { return (__mmask16)((1u << n) - 1u); }
// First n lanes (0 < n < kLanes); the rest read as zero and are never touched in memory.
ND_INLINE Vf vload_n(const float* p, int n) { return _mm512_maskz_loadu_ps(lane_mask(n), p); }
ND_INLINE void vstore_n(float* p, Vf v, int n) { _mm512_mask_storeu_ps(p, lane_mask(n), v); }
// Hint that the cache line at p is read (write: written) soon.
ND_INLINE void vprefetch(const void* p) { __builtin_prefetch(p, 0, 3); }
ND_INLINE void vprefetch_write(void* p) { __builtin_prefetch(p, 1, 3); }
ND_INLINE Vf vset1(float x) { return _mm512_set1_ps(x); }
ND_INLINE Vf vzero() { return _mm512_setzero_ps(); }
ND_INLINE Vf vadd(Vf a, Vf b) { return _mm512_add_ps(a, b); }
ND_INLINE Vf vsub(Vf a, Vf b) { return _mm512_sub_ps(a, b); }
ND_INLINE Vf vmul(Vf a, Vf b) { return _mm512_mul_ps(a, b); }
ND_INLINE Vf vdiv(Vf a, Vf b) { return _mm512_div_ps(a, b); }
ND_INLINE Vf vfma(Vf a, Vf b, Vf c) { return _mm512_fmadd_ps(a, b, c); }    // a*b + c
ND_INLINE Vf vfnma(Vf a, Vf b, Vf c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a*b
ND_INLINE Vf vmax(Vf a, Vf b) { return _mm512_max_ps(a, b); }
ND_INLINE Vf vmin(Vf a, Vf b) { return _mm512_min_ps(a, b); }
ND_INLINE Vf vabs(Vf a) { return _mm512_abs_ps(a); }
ND_INLINE float vsum(Vf a) { return _mm512_reduce_add_ps(a); }
ND_INLINE float vmaxall(Vf a) { return _mm512_reduce_max_ps(a); }
// Round to nearest integer (ties to even).
ND_INLINE Vf vround(Vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// p * 2^n for integral n; exact, with correct underflow to denormals/zero and overflow to inf.
ND_INLINE Vf vscale2(Vf p, Vf n) { return _mm512_scalef_ps(p, n); }
// x < 0 ? a : b
ND_INLINE Vf vselect_neg(Vf x, Vf a, Vf b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ), b, a);
}

}  // namespace nd::cpu::isa_avx512
