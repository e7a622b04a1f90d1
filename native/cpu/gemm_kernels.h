// Internal interface of the blocked GEMM: packers that lay operands out as panels, and the
// register-tiled micro-kernels that consume them. One Kernels table per ISA level; the
// driver (gemm_driver.h) is ISA-agnostic and calls through the table.
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "cpu/cpu_features.h"

namespace nd::cpu::gemm {

// How a micro-kernel writes its m×n tile: C = alpha·acc + beta·C + bias_m[i] + bias_n[j].
// beta == 0 never reads C (so uninitialised output is fine). Bias pointers are already offset
// to the tile's first row / column.
struct Epilogue {
  float alpha = 1.f;
  float beta = 0.f;
  const float* bias_m = nullptr;
  const float* bias_n = nullptr;
};

// Packed panels: a panel holds `width` consecutive rows (of the M or N side) for a K range,
// stored k-major: panel[k * width + i]. Rows past the matrix end are zero.
// The micro-kernel reads an A panel (width mr) and a B panel (width nr).
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                             const Epilogue& ep);

// Operand whose rows are K-contiguous: element (r, k) at data[r * ld + k] (x for Linear, W for
// Linear and convolution). Any float dtype; widened to f32 while packing.
struct RowsSource {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t ld = 0;
};
// Operand whose rows are strided: element (r, k) at data[k * ld + r] (NCHW activations of a 1×1 conv).
struct ColsSource {
  const float* data = nullptr;
  int64_t ld = 0;
};
// Implicit im2col of one NCHW image: row r = output position (oy·wo + ox), k = (ci·kh + ky)·kw + kx.
struct ConvSource {
  const float* x = nullptr;
  int64_t cin = 0, h = 0, w = 0, ho = 0, wo = 0;
  int kh = 1, kw = 1, stride = 1, pad = 0;
};

// Each packer fills rows [r0, r0 + rn) × k [k0, k0 + kc) into ceil(rn / width) panels at dst
// (panel p starts at dst + p·width·kc). dst must have kPackSlack floats of room past the last
// panel: packers may store whole vectors whose tail lanes are rewritten by later stores.
constexpr int64_t kPackSlack = 16;
using PackRows = void (*)(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc);
using PackCols = void (*)(const ColsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc);
using PackConv = void (*)(const ConvSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc);

// y[m, n0:n1] = x[m, :] · W[n0:n1, :]ᵀ (+ bias, + y when accumulate) for a few rows m: the
// matrix-vector path, reading W once without packing.
using DotRows = void (*)(const float* x, int64_t m, int64_t ldx, const RowsSource& w, int64_t n0, int64_t n1, int64_t k,
                         const float* bias, float* y, int64_t ldy, bool accumulate);

struct Kernels {
  Isa isa = Isa::Scalar;
  int mr = 4, nr = 8;                    // micro-tile
  int64_t mc = 64, kc = 256, nc = 2048;  // cache blocks (mc multiple of mr, nc multiple of nr)
  MicroKernel micro = nullptr;
  PackRows pack_rows = nullptr;
  PackCols pack_cols = nullptr;
  PackConv pack_conv = nullptr;
  DotRows dot_rows = nullptr;
};

const Kernels& kernels_scalar();
const Kernels& kernels_avx2();    // only valid when best_isa() >= Avx2
const Kernels& kernels_avx512();  // only valid when best_isa() >= Avx512
const Kernels& kernels_neon();    // aarch64 builds only
// The table for active_isa().
const Kernels& active_kernels();

// Portable packers (also used by the AVX2 table where a wide version would not pay off).
void pack_rows_generic(const RowsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc);
void pack_cols_generic(const ColsSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc);
void pack_conv_generic(const ConvSource& s, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc);
void dot_rows_generic(const float* x, int64_t m, int64_t ldx, const RowsSource& w, int64_t n0, int64_t n1, int64_t k,
                      const float* bias, float* y, int64_t ldy, bool accumulate);

}  // namespace nd::cpu::gemm
