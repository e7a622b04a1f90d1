// AVX2 + FMA GEMM kernels: a 6×16 register tile (12 ymm accumulators) and a row packer that
// widens f16 with F16C. Built per function with target attributes; entered only after cpuid
// reported AVX2, FMA and F16C.
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own "undefined vector" idiom.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/gemm_kernels.h"

#define ND_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace nd::cpu::gemm {

namespace {

constexpr int kMr = 6, kNr = 16;

template <int MR>
ND_AVX2 void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int n, const Epilogue& ep) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
    a += kMr;
    b += kNr;
  }
  alignas(32) float buf[kNr];
  const __m256 alpha = _mm256_set1_ps(ep.alpha);
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    _mm256_store_ps(buf, _mm256_mul_ps(alpha, c0[i]));
    _mm256_store_ps(buf + 8, _mm256_mul_ps(alpha, c1[i]));
    const float bm = ep.bias_m ? ep.bias_m[i] : 0.f;
    if (n == kNr && ep.beta == 0.f && !ep.bias_n && !ep.bias_m) {
      std::memcpy(ci, buf, sizeof buf);
      continue;
    }
    for (int j = 0; j < n; ++j) {
      float v = buf[j] + bm;
      if (ep.bias_n) v += ep.bias_n[j];
      if (ep.beta != 0.f) v += ep.beta * ci[j];
      ci[j] = v;
    }
  }
}

ND_AVX2 void micro_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                        const Epilogue& ep) {
  switch (m) {
    case 6: return tile<6>(kc, a, b, c, ldc, n, ep);
    case 5: return tile<5>(kc, a, b, c, ldc, n, ep);
    case 4: return tile<4>(kc, a, b, c, ldc, n, ep);
    case 3: return tile<3>(kc, a, b, c, ldc, n, ep);
    case 2: return tile<2>(kc, a, b, c, ldc, n, ep);
    default: return tile<1>(kc, a, b, c, ldc, n, ep);
  }
}

ND_AVX2 void widen_row(const void* data, DType t, int64_t i, int64_t n, float* out) {
  if (t == DType::F32) {
    std::memcpy(out, static_cast<const float*>(data) + i, (size_t)n * 4);
    return;
  }
  const uint16_t* h = static_cast<const uint16_t*>(data) + i;
  int64_t j = 0;
  if (t == DType::F16) {
    for (; j + 8 <= n; j += 8)
      _mm256_storeu_ps(out + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j))));
    for (; j < n; ++j) out[j] = _cvtsh_ss(h[j]);
  } else {
    for (; j + 8 <= n; j += 8) {
      const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + j)));
      _mm256_storeu_ps(out + j, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; j < n; ++j) out[j] = bf16_to_f32(h[j]);
  }
}

ND_AVX2 void pack_rows_avx2(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0,
                            int64_t kc) {
  if (s.dtype != DType::F32 && s.dtype != DType::F16 && s.dtype != DType::BF16)
    return pack_rows_generic(s, dst, width, r0, rn, k0, kc);
  alignas(32) float row[256];
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int rows = (int)std::min<int64_t>(width, rn - p);
    if (rows < width) std::fill(dst, dst + width * kc, 0.f);
    for (int i = 0; i < rows; ++i)
      for (int64_t kb = 0; kb < kc; kb += 256) {
        const int64_t kn = std::min<int64_t>(256, kc - kb);
        widen_row(s.data, s.dtype, (r0 + p + i) * s.ld + k0 + kb, kn, row);
        float* d = dst + kb * width + i;
        for (int64_t k = 0; k < kn; ++k) d[k * width] = row[k];
      }
  }
}

}  // namespace

const Kernels& kernels_avx2() {
  static const Kernels k = [] {
    Kernels t;
    t.isa = Isa::Avx2;
    t.mr = kMr;
    t.nr = kNr;
    t.mc = kMr * 24;
    t.kc = 256;
    t.nc = kNr * 128;
    t.micro = micro_avx2;
    t.pack_rows = pack_rows_avx2;
    t.pack_cols = pack_cols_generic;
    t.pack_conv = pack_conv_generic;
    t.dot_rows = dot_rows_generic;
    return t;
  }();
  return k;
}

}  // namespace nd::cpu::gemm
#endif
