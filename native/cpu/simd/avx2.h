// AVX2 + FMA vector primitives (8 f32 lanes) for the kernels in cpu/kernels/*.inc.
// Every function carries the target attribute (see avx512.h).
#pragma once
#include <immintrin.h>

#include <cstdint>

#define ND_TARGET __attribute__((target("avx2,fma")))
#define ND_INLINE inline __attribute__((always_inline)) ND_TARGET
#define ND_UNROLL _Pragma("GCC unroll 16")

namespace nd::cpu::isa_avx2 {

constexpr int kLanes = 8;
constexpr int kVectorRegisters = 16;
using Vf = __m256;

ND_INLINE Vf vload(const float* p) { return _mm256_loadu_ps(p); }
ND_INLINE void vstore(float* p, Vf v) { _mm256_storeu_ps(p, v); }
ND_INLINE __m256i lane_mask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// First n lanes (0 < n < kLanes); masked lanes read as zero and are never touched in memory.
ND_INLINE Vf vload_n(const float* p, int n) { return _mm256_maskload_ps(p, lane_mask(n)); }
ND_INLINE void vstore_n(float* p, Vf v, int n) { _mm256_maskstore_ps(p, lane_mask(n), v); }
// Hint that the cache line at p is read (write: written) soon.
ND_INLINE void vprefetch(const void* p) { __builtin_prefetch(p, 0, 3); }
ND_INLINE void vprefetch_write(void* p) { __builtin_prefetch(p, 1, 3); }
ND_INLINE Vf vset1(float x) { return _mm256_set1_ps(x); }
ND_INLINE Vf vzero() { return _mm256_setzero_ps(); }
ND_INLINE Vf vadd(Vf a, Vf b) { return _mm256_add_ps(a, b); }
ND_INLINE Vf vsub(Vf a, Vf b) { return _mm256_sub_ps(a, b); }
ND_INLINE Vf vmul(Vf a, Vf b) { return _mm256_mul_ps(a, b); }
ND_INLINE Vf vdiv(Vf a, Vf b) { return _mm256_div_ps(a, b); }
ND_INLINE Vf vfma(Vf a, Vf b, Vf c) { return _mm256_fmadd_ps(a, b, c); }
ND_INLINE Vf vfnma(Vf a, Vf b, Vf c) { return _mm256_fnmadd_ps(a, b, c); }
ND_INLINE Vf vmax(Vf a, Vf b) { return _mm256_max_ps(a, b); }
ND_INLINE Vf vmin(Vf a, Vf b) { return _mm256_min_ps(a, b); }
ND_INLINE Vf vabs(Vf a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
ND_INLINE float vsum(Vf a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
ND_INLINE float vmaxall(Vf a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
ND_INLINE Vf vround(Vf x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// p * 2^n for integral n in [-127, 128] (callers clamp): n = -127 gives 0, n = 128 gives inf.
ND_INLINE Vf vscale2(Vf p, Vf n) {
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}
ND_INLINE Vf vselect_neg(Vf x, Vf a, Vf b) {
  return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ));
}

}  // namespace nd::cpu::isa_avx2
