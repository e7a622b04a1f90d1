// AVX2 + FMA GEMM kernels: a 6×16 register tile (12 ymm accumulators) and a row packer that
// transposes 8×8 blocks in registers, widening f16 with F16C. Built per function with target attributes; entered only
// after cpuid reported AVX2, FMA and F16C.
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own "undefined vector" idiom.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

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
  const __m256 alpha = _mm256_set1_ps(ep.alpha), beta = _mm256_set1_ps(ep.beta);
  __m256 bn0 = _mm256_setzero_ps(), bn1 = _mm256_setzero_ps();
  if (ep.bias_n && n == kNr) {
    bn0 = _mm256_loadu_ps(ep.bias_n);
    bn1 = _mm256_loadu_ps(ep.bias_n + 8);
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m256 v0 = _mm256_mul_ps(alpha, c0[i]), v1 = _mm256_mul_ps(alpha, c1[i]);
    if (ep.bias_m) {
      const __m256 bm = _mm256_set1_ps(ep.bias_m[i]);
      v0 = _mm256_add_ps(v0, bm);
      v1 = _mm256_add_ps(v1, bm);
    }
    if (n == kNr) {  // full tile: vector epilogue
      v0 = _mm256_add_ps(v0, bn0);
      v1 = _mm256_add_ps(v1, bn1);
      if (ep.beta != 0.f) {
        v0 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(ci), v0);
        v1 = _mm256_fmadd_ps(beta, _mm256_loadu_ps(ci + 8), v1);
      }
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
      continue;
    }
    alignas(32) float buf[kNr];
    _mm256_store_ps(buf, v0);
    _mm256_store_ps(buf + 8, v1);
    for (int j = 0; j < n; ++j) {
      float v = buf[j];
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

// 8 elements of row data at element index i (n < 8: zero-filled tail).
template <DType DT>
ND_AVX2 inline __m256 load8(const void* data, int64_t i, int n) {
  using Elem = std::conditional_t<DT == DType::F32, float, uint16_t>;
  const Elem* p = static_cast<const Elem*>(data) + i;
  Elem tmp[8] = {};
  if (n < 8) {
    std::memcpy(tmp, p, (size_t)n * sizeof(Elem));
    p = tmp;
  }
  if constexpr (DT == DType::F32) {
    return _mm256_loadu_ps(p);
  } else if constexpr (DT == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
}

ND_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
    r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
  }
}

// Rows of a K-contiguous matrix into k-major panels: 8×8 blocks transposed in registers.
template <DType DT>
ND_AVX2 void pack_rows_t(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc) {
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int rows = (int)std::min<int64_t>(width, rn - p);
    for (int g = 0; g < width; g += 8) {
      const int lanes = std::min(8, width - g), valid = std::max(0, std::min(lanes, rows - g));
      // Whole-vector stores spill zero lanes onto the next k row's start, rewritten next (slack per kPackSlack).
      const bool spill_ok = lanes == 8 || width <= 8;
      const int64_t first = (r0 + p + g) * s.ld + k0;
      for (int64_t kb = 0; kb < kc; kb += 8) {
        const int kn = (int)std::min<int64_t>(8, kc - kb);
        __m256 r[8];
        for (int i = 0; i < 8; ++i)
          r[i] = i < valid ? load8<DT>(s.data, first + i * s.ld + kb, kn) : _mm256_setzero_ps();
        transpose8(r);
        float* d = dst + kb * width + g;
        for (int j = 0; j < kn; ++j) {
          if (spill_ok) {
            _mm256_storeu_ps(d + j * width, r[j]);
          } else {
            alignas(32) float tmp[8];
            _mm256_store_ps(tmp, r[j]);
            std::memcpy(d + j * width, tmp, (size_t)lanes * sizeof(float));
          }
        }
      }
    }
  }
}

ND_AVX2 void pack_rows_avx2(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0,
                            int64_t kc) {
  switch (s.dtype) {
    case DType::F32: return pack_rows_t<DType::F32>(s, dst, width, r0, rn, k0, kc);
    case DType::F16: return pack_rows_t<DType::F16>(s, dst, width, r0, rn, k0, kc);
    case DType::BF16: return pack_rows_t<DType::BF16>(s, dst, width, r0, rn, k0, kc);
    default: return pack_rows_generic(s, dst, width, r0, rn, k0, kc);
  }
}

}  // namespace

const Kernels& kernels_avx2() {
  static const Kernels k = [] {
    Kernels t;
    t.isa = Isa::Avx2;
    t.mr = kMr;
    t.nr = kNr;
    t.mc = kMr * 16;
    t.kc = 512;
    t.nc = kNr * 64;
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
