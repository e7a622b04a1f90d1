// Portable GEMM pieces: packers for any operand kind, a 4×8 micro-kernel and the
// matrix-vector path. Compiled for baseline x86-64 / any architecture; the compiler's
// auto-vectorisation is all the SIMD this file gets.
#include <algorithm>
#include <cstring>

#include "cpu/gemm_kernels.h"

namespace nd::cpu::gemm {

namespace {

// Widens n elements of a float tensor starting at element i into out.
void widen(const void* data, DType t, int64_t i, int64_t n, float* out) {
  switch (t) {
    case DType::F32: std::memcpy(out, static_cast<const float*>(data) + i, (size_t)n * 4); break;
    case DType::F16: {
      const uint16_t* h = static_cast<const uint16_t*>(data) + i;
      for (int64_t j = 0; j < n; ++j) out[j] = f16_to_f32(h[j]);
      break;
    }
    case DType::BF16: {
      const uint16_t* h = static_cast<const uint16_t*>(data) + i;
      for (int64_t j = 0; j < n; ++j) out[j] = bf16_to_f32(h[j]);
      break;
    }
    default:
      for (int64_t j = 0; j < n; ++j) out[j] = load_as_f32(data, t, (size_t)(i + j));
  }
}

constexpr int kMr = 4, kNr = 8;

void micro_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, const Epilogue& ep) {
  float acc[kMr][kNr] = {};
  for (int64_t k = 0; k < kc; ++k, a += kMr, b += kNr)
    for (int i = 0; i < kMr; ++i)
      for (int j = 0; j < kNr; ++j) acc[i][j] += a[i] * b[j];
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      float v = ep.alpha * acc[i][j];
      if (ep.beta != 0.f) v += ep.beta * c[i * ldc + j];
      if (ep.bias_m) v += ep.bias_m[i];
      if (ep.bias_n) v += ep.bias_n[j];
      c[i * ldc + j] = v;
    }
}

}  // namespace

void pack_rows_generic(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc) {
  float row[256];
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int rows = (int)std::min<int64_t>(width, rn - p);
    if (rows < width) std::fill(dst, dst + width * kc, 0.f);
    for (int i = 0; i < rows; ++i)
      for (int64_t kb = 0; kb < kc; kb += 256) {
        const int64_t kn = std::min<int64_t>(256, kc - kb);
        widen(s.data, s.dtype, (r0 + p + i) * s.ld + k0 + kb, kn, row);
        for (int64_t k = 0; k < kn; ++k) dst[(kb + k) * width + i] = row[k];
      }
  }
}

void pack_cols_generic(const ColsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc) {
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int rows = (int)std::min<int64_t>(width, rn - p);
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = s.data + (k0 + k) * s.ld + r0 + p;
      float* d = dst + k * width;
      for (int i = 0; i < rows; ++i) d[i] = src[i];
      for (int i = rows; i < width; ++i) d[i] = 0.f;
    }
  }
}

void pack_conv_generic(const ConvSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc) {
  const int taps = s.kh * s.kw;
  for (int64_t p = 0; p < rn; p += width, dst += width * kc) {
    const int cols = (int)std::min<int64_t>(width, rn - p);
    int64_t ci = k0 / taps;
    int ky = (int)(k0 % taps) / s.kw, kx = (int)(k0 % taps) % s.kw;
    for (int64_t k = 0; k < kc; ++k) {
      float* d = dst + k * width;
      const float* plane = s.x + ci * s.h * s.w;
      for (int j = 0; j < cols; ++j) {
        const int64_t pos = r0 + p + j, oy = pos / s.wo, ox = pos % s.wo;
        const int64_t iy = oy * s.stride - s.pad + ky, ix = ox * s.stride - s.pad + kx;
        d[j] = (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) ? plane[iy * s.w + ix] : 0.f;
      }
      for (int j = cols; j < width; ++j) d[j] = 0.f;
      if (++kx == s.kw) {
        kx = 0;
        if (++ky == s.kh) ky = 0, ++ci;
      }
    }
  }
}

void dot_rows_generic(const float* x, int64_t m, int64_t ldx, const RowsSource& w, int64_t n0, int64_t n1, int64_t k,
                      const float* bias, float* y, int64_t ldy, bool accumulate) {
  float row[256];
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t r = 0; r < m; ++r) {
      float acc = 0.f;
      for (int64_t kb = 0; kb < k; kb += 256) {
        const int64_t kn = std::min<int64_t>(256, k - kb);
        widen(w.data, w.dtype, n * w.ld + kb, kn, row);
        const float* xr = x + r * ldx + kb;
        for (int64_t i = 0; i < kn; ++i) acc += xr[i] * row[i];
      }
      if (bias) acc += bias[n];
      float& out = y[r * ldy + n];
      out = accumulate ? out + acc : acc;
    }
  }
}

const Kernels& kernels_scalar() {
  static const Kernels k = [] {
    Kernels t;
    t.isa = Isa::Scalar;
    t.mr = kMr;
    t.nr = kNr;
    t.mc = 64;
    t.kc = 256;
    t.nc = 1024;
    t.micro = micro_scalar;
    t.pack_rows = pack_rows_generic;
    t.pack_cols = pack_cols_generic;
    t.pack_conv = pack_conv_generic;
    t.dot_rows = dot_rows_generic;
    return t;
  }();
  return k;
}

const Kernels& active_kernels() {
  switch (active_isa()) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    case Isa::Avx512: return kernels_avx512();
    case Isa::Avx2: return kernels_avx2();
#endif
#if defined(__aarch64__)
    case Isa::Neon: return kernels_neon();
#endif
    default: return kernels_scalar();
  }
}

}  // namespace nd::cpu::gemm
