// AVX-512 GEMM kernels: a 14×32 register tile (28 zmm accumulators), packers that transpose
// 16×16 blocks in registers while widening f16 (vcvtph2ps) / bf16 (shift) weights, an implicit
// im2col packer using masked loads for the padding, and the matrix-vector path. Every function
// carries its own target attribute: the file is built for baseline x86-64 and only entered
// after cpuid said AVX-512 is there (see cpu_features.h).
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own "undefined vector" idiom.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cpu/gemm_kernels.h"

#define ND_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

namespace nd::cpu::gemm {

namespace {

constexpr int kMr = 14, kNr = 32;

ND_AVX512 inline __mmask16 lane_mask(int n) { return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u); }
ND_AVX512 inline __mmask16 range_mask(int lo, int hi) {  // bits [lo, hi) within 0..16
  lo = std::max(lo, 0);
  hi = std::min(hi, 16);
  return hi > lo ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : (__mmask16)0;
}
// Address arithmetic that may point before a row start; masked lanes are never touched.
inline const float* offset_ptr(const float* p, int64_t elements) {
  return reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(p) + (uintptr_t)(elements * 4));
}

// ---- micro-kernel -------------------------------------------------------------------------

template <int MR>
ND_AVX512 void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int n, const Epilogue& ep) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    c0[i] = c1[i] = _mm512_setzero_ps();
    // The tile is read (beta != 0) or written at the end: start fetching it now.
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 31), _MM_HINT_T0);
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    a += kMr;
    b += kNr;
  }
  const __mmask16 m0 = lane_mask(n), m1 = lane_mask(std::max(0, n - 16));
  const __m512 alpha = _mm512_set1_ps(ep.alpha), beta = _mm512_set1_ps(ep.beta);
  __m512 bn0 = _mm512_setzero_ps(), bn1 = _mm512_setzero_ps();
  if (ep.bias_n) {
    bn0 = _mm512_maskz_loadu_ps(m0, ep.bias_n);
    bn1 = _mm512_maskz_loadu_ps(m1, ep.bias_n + 16);
  }
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 v0 = _mm512_fmadd_ps(alpha, c0[i], bn0), v1 = _mm512_fmadd_ps(alpha, c1[i], bn1);
    if (ep.bias_m) {
      const __m512 bm = _mm512_set1_ps(ep.bias_m[i]);
      v0 = _mm512_add_ps(v0, bm);
      v1 = _mm512_add_ps(v1, bm);
    }
    if (ep.beta != 0.f) {
      v0 = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m0, ci), v0);
      v1 = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m1, ci + 16), v1);
    }
    _mm512_mask_storeu_ps(ci, m0, v0);
    _mm512_mask_storeu_ps(ci + 16, m1, v1);
  }
}

ND_AVX512 void micro_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                            const Epilogue& ep) {
  switch (m) {
    case 14: return tile<14>(kc, a, b, c, ldc, n, ep);
    case 13: return tile<13>(kc, a, b, c, ldc, n, ep);
    case 12: return tile<12>(kc, a, b, c, ldc, n, ep);
    case 11: return tile<11>(kc, a, b, c, ldc, n, ep);
    case 10: return tile<10>(kc, a, b, c, ldc, n, ep);
    case 9: return tile<9>(kc, a, b, c, ldc, n, ep);
    case 8: return tile<8>(kc, a, b, c, ldc, n, ep);
    case 7: return tile<7>(kc, a, b, c, ldc, n, ep);
    case 6: return tile<6>(kc, a, b, c, ldc, n, ep);
    case 5: return tile<5>(kc, a, b, c, ldc, n, ep);
    case 4: return tile<4>(kc, a, b, c, ldc, n, ep);
    case 3: return tile<3>(kc, a, b, c, ldc, n, ep);
    case 2: return tile<2>(kc, a, b, c, ldc, n, ep);
    default: return tile<1>(kc, a, b, c, ldc, n, ep);
  }
}

// ---- packers ------------------------------------------------------------------------------

template <DType DT>
ND_AVX512 inline __m512 load16(const void* base, int64_t index, __mmask16 mask) {
  if constexpr (DT == DType::F32) {
    return _mm512_maskz_loadu_ps(mask, static_cast<const float*>(base) + index);
  } else if constexpr (DT == DType::F16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(base) + index));
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, static_cast<const uint16_t*>(base) + index);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

template <DType DT>
using Elem = std::conditional_t<DT == DType::F32, float, uint16_t>;
constexpr int64_t kPrefetchAhead = 64;  // elements ahead along a row

// In-register transpose: afterwards r[j] lane i holds what r[i] lane j held.
ND_AVX512 inline void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
    t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
    r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
    r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
  }
}

template <DType DT>
ND_AVX512 void pack_rows_t(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc) {
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int rows = (int)std::min<int64_t>(width, rn - p);
    for (int g = 0; g < width; g += 16) {
      const int lanes = std::min(16, width - g);
      const int valid = std::max(0, std::min(lanes, rows - g));
      const __mmask16 store_mask = lane_mask(lanes);
      const bool spill_ok = lanes == 16 || width <= 16;
      const int64_t first = (r0 + p + g) * s.ld + k0;
      for (int64_t kb = 0; kb < kc; kb += 16) {
        const int kn = (int)std::min<int64_t>(16, kc - kb);
        const __mmask16 kmask = lane_mask(kn);
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) {
          if (i < valid) {
            const int64_t at = first + i * s.ld + kb;
            // Rows sit far apart (often a page or more): more streams than the hardware prefetcher follows.
            _mm_prefetch(static_cast<const char*>(s.data) + (at + kPrefetchAhead) * (int64_t)sizeof(Elem<DT>),
                         _MM_HINT_T0);
            r[i] = load16<DT>(s.data, at, kmask);
          } else {
            r[i] = _mm512_setzero_ps();
          }
        }
        transpose16(r);
        float* d = dst + kb * width + g;
        if (spill_ok) {
          // Full 16-lane stores in ascending k: the (zero) lanes past the panel width land on the
          // next k row's first slots, which the next store overwrites (buffer has 16 floats slack).
          for (int j = 0; j < kn; ++j) _mm512_storeu_ps(d + j * width, r[j]);
        } else {
          for (int j = 0; j < kn; ++j) _mm512_mask_storeu_ps(d + j * width, store_mask, r[j]);
        }
      }
    }
  }
}

ND_AVX512 void pack_rows_avx512(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0,
                                int64_t kc) {
  switch (s.dtype) {
    case DType::F32: return pack_rows_t<DType::F32>(s, dst, width, r0, rn, k0, kc);
    case DType::F16: return pack_rows_t<DType::F16>(s, dst, width, r0, rn, k0, kc);
    case DType::BF16: return pack_rows_t<DType::BF16>(s, dst, width, r0, rn, k0, kc);
    default: return pack_rows_generic(s, dst, width, r0, rn, k0, kc);
  }
}

ND_AVX512 void pack_cols_avx512(const ColsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0,
                                int64_t kc) {
  // k outer: each source row is read sequentially across all panels (rows of an NCHW image are
  // far apart, so walking k inside a panel would touch a new page per element row).
  for (int64_t k = 0; k < kc; ++k) {
    const float* src = s.data + (k0 + k) * s.ld + r0;
    for (int64_t p = 0; p < rn; p += width) {
      const int rows = (int)std::min<int64_t>(width, rn - p);
      float* d = dst + p * kc + k * width;
      for (int g = 0; g < width; g += 16) {
        const int lanes = std::min(16, width - g), valid = std::max(0, std::min(lanes, rows - g));
        _mm512_mask_storeu_ps(d + g, lane_mask(lanes), _mm512_maskz_loadu_ps(lane_mask(valid), src + p + g));
      }
    }
  }
}

// Up to 16 consecutive positions of one output row inside a panel.
struct Chunk {
  int offset, lanes;  // destination lanes [offset, offset + lanes)
  int64_t oy, ox;     // output position of the first lane
};
constexpr int kMaxChunks = 64, kMaxKw = 8;
constexpr int64_t kPrefetchPlanes = 4;  // channels ahead

ND_AVX512 void pack_conv_avx512(const ConvSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0,
                                int64_t kc) {
  if (s.stride > 2 || width > kMaxChunks || s.kw > kMaxKw) return pack_conv_generic(s, dst, width, r0, rn, k0, kc);
  const int taps = s.kh * s.kw;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  Chunk chunks[kMaxChunks];
  // Per chunk and kx: the first input column and the masks of in-image lanes. They depend on
  // neither the channel nor ky, so the per-k loop below is loads and stores only.
  int64_t first_col[kMaxChunks][kMaxKw];
  __mmask16 mask_lo[kMaxChunks][kMaxKw], mask_hi[kMaxChunks][kMaxKw];
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int cols = (int)std::min<int64_t>(width, rn - p);
    int nchunks = 0;
    for (int j = 0; j < cols;) {
      const int64_t pos = r0 + p + j, oy = pos / s.wo, ox = pos % s.wo;
      const int len = (int)std::min<int64_t>(cols - j, s.wo - ox);
      for (int l = 0; l < len; l += 16) chunks[nchunks++] = {j + l, std::min(16, len - l), oy, ox + l};
      j += len;
    }
    for (int c = 0; c < nchunks; ++c)
      for (int kx = 0; kx < s.kw; ++kx) {
        const int64_t st = chunks[c].ox * s.stride - s.pad + kx;
        const int span = s.stride == 1 ? chunks[c].lanes : 2 * chunks[c].lanes - 1;  // input columns touched
        const int lo = (int)std::max<int64_t>(0, -st), hi = (int)std::min<int64_t>(span, s.w - st);
        first_col[c][kx] = st;
        mask_lo[c][kx] = range_mask(lo, hi);
        mask_hi[c][kx] = range_mask(lo - 16, hi - 16);
      }
    int64_t ci = k0 / taps;
    int ky = (int)(k0 % taps) / s.kw, kx = (int)(k0 % taps) % s.kw;
    for (int64_t k = 0; k < kc; ++k) {
      float* d = dst + k * width;
      for (int j = cols; j < width; j += 16) _mm512_mask_storeu_ps(d + j, lane_mask(width - j), _mm512_setzero_ps());
      const float* plane = s.x + ci * s.h * s.w;
      if (ky == 0 && kx == 0 && ci + kPrefetchPlanes < s.cin) {
        // Each channel is a different plane far away; no hardware prefetcher follows that walk.
        const float* ahead = plane + kPrefetchPlanes * s.h * s.w;
        for (int c = 0; c < nchunks; ++c)
          for (int y = 0; y < s.kh; ++y) {
            const int64_t iy = chunks[c].oy * s.stride - s.pad + y;
            if (iy < 0 || iy >= s.h) continue;
            const float* row = ahead + iy * s.w + std::max<int64_t>(0, first_col[c][0]);
            _mm_prefetch(reinterpret_cast<const char*>(row), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(row + 16 * s.stride), _MM_HINT_T0);
          }
      }
      for (int c = 0; c < nchunks; ++c) {
        const Chunk& ch = chunks[c];
        const int64_t iy = ch.oy * s.stride - s.pad + ky;
        __m512 v = _mm512_setzero_ps();
        if (iy >= 0 && iy < s.h) {
          const float* src = offset_ptr(plane + iy * s.w, first_col[c][kx]);
          if (s.stride == 1) {
            v = _mm512_maskz_loadu_ps(mask_lo[c][kx], src);
          } else {
            const __m512 a = _mm512_maskz_loadu_ps(mask_lo[c][kx], src);
            const __m512 b = _mm512_maskz_loadu_ps(mask_hi[c][kx], offset_ptr(src, 16));
            v = _mm512_permutex2var_ps(a, even, b);
          }
        }
        _mm512_mask_storeu_ps(d + ch.offset, lane_mask(ch.lanes), v);
      }
      if (++kx == s.kw) {
        kx = 0;
        if (++ky == s.kh) ky = 0, ++ci;
      }
    }
  }
}

// ---- matrix-vector path --------------------------------------------------------------------

ND_AVX512 inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

template <DType DT, int M>
ND_AVX512 void dot_rows_t(const float* x, int64_t ldx, const RowsSource& w, int64_t n0, int64_t n1, int64_t k,
                          const float* bias, float* y, int64_t ldy, bool accumulate) {
  int64_t n = n0;
  for (; n < n1; n += 2) {
    const int cols = n + 1 < n1 ? 2 : 1;
    __m512 acc[M][2];
    for (int r = 0; r < M; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t kb = 0; kb < k; kb += 16) {
      const __mmask16 mask = lane_mask((int)std::min<int64_t>(16, k - kb));
      const __m512 w0 = load16<DT>(w.data, n * w.ld + kb, mask);
      const __m512 w1 = cols == 2 ? load16<DT>(w.data, (n + 1) * w.ld + kb, mask) : _mm512_setzero_ps();
      for (int r = 0; r < M; ++r) {
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * ldx + kb);
        acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
      }
    }
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < cols; ++c) {
        float v = hsum(acc[r][c]) + (bias ? bias[n + c] : 0.f);
        float& out = y[r * ldy + n + c];
        out = accumulate ? out + v : v;
      }
  }
}

template <DType DT>
ND_AVX512 void dot_rows_dt(const float* x, int64_t m, int64_t ldx, const RowsSource& w, int64_t n0, int64_t n1,
                           int64_t k, const float* bias, float* y, int64_t ldy, bool accumulate) {
  for (int64_t r = 0; r < m; r += 4) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    switch (std::min<int64_t>(4, m - r)) {
      case 4: dot_rows_t<DT, 4>(xr, ldx, w, n0, n1, k, bias, yr, ldy, accumulate); break;
      case 3: dot_rows_t<DT, 3>(xr, ldx, w, n0, n1, k, bias, yr, ldy, accumulate); break;
      case 2: dot_rows_t<DT, 2>(xr, ldx, w, n0, n1, k, bias, yr, ldy, accumulate); break;
      default: dot_rows_t<DT, 1>(xr, ldx, w, n0, n1, k, bias, yr, ldy, accumulate); break;
    }
  }
}

ND_AVX512 void dot_rows_avx512(const float* x, int64_t m, int64_t ldx, const RowsSource& w, int64_t n0, int64_t n1,
                               int64_t k, const float* bias, float* y, int64_t ldy, bool accumulate) {
  switch (w.dtype) {
    case DType::F32: return dot_rows_dt<DType::F32>(x, m, ldx, w, n0, n1, k, bias, y, ldy, accumulate);
    case DType::F16: return dot_rows_dt<DType::F16>(x, m, ldx, w, n0, n1, k, bias, y, ldy, accumulate);
    case DType::BF16: return dot_rows_dt<DType::BF16>(x, m, ldx, w, n0, n1, k, bias, y, ldy, accumulate);
    default: return dot_rows_generic(x, m, ldx, w, n0, n1, k, bias, y, ldy, accumulate);
  }
}

}  // namespace

const Kernels& kernels_avx512() {
  static const Kernels k = [] {
    Kernels t;
    t.isa = Isa::Avx512;
    t.mr = kMr;
    t.nr = kNr;
    // Measured on Zen 4 (32 KB L1, 1 MB L2): long K blocks keep C traffic low; the B micro-panel
    // (kc × 32) streams from L2 while the A block (mc × kc) stays there.
    t.mc = kMr * 6;
    t.kc = 768;
    t.nc = kNr * 32;
    t.micro = micro_avx512;
    t.pack_rows = pack_rows_avx512;
    t.pack_cols = pack_cols_avx512;
    t.pack_conv = pack_conv_avx512;
    t.dot_rows = dot_rows_avx512;
    return t;
  }();
  return k;
}

}  // namespace nd::cpu::gemm
#endif
