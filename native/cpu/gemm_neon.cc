// AArch64 NEON GEMM micro-kernel: an 8×12 register tile (24 q-register accumulators, 3 for B, 2 for
// A), fed with by-lane FMAs (fmla v.4s, v.4s, v.s[i]) so A needs no broadcast. NEON is part of the
// AArch64 base ISA, so no run-time check. The packers and the matrix-vector path are the portable
// ones (the compiler vectorises them for NEON).
#if defined(__aarch64__)
#include <arm_neon.h>

#include <cstdint>

#include "cpu/gemm_kernels.h"

namespace nd::cpu::gemm {

namespace {

constexpr int kMr = 8, kNr = 12;

// One row of the tile: c[i] += a_lane · b (three vectors of B).
#define ND_NEON_ROW(i, av, lane)                  \
  if (MR > (i)) {                                 \
    c0[i] = vfmaq_laneq_f32(c0[i], b0, av, lane); \
    c1[i] = vfmaq_laneq_f32(c1[i], b1, av, lane); \
    c2[i] = vfmaq_laneq_f32(c2[i], b2, av, lane); \
  }

template <int MR>
void tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int n, const Epilogue& ep) {
  float32x4_t c0[kMr], c1[kMr], c2[kMr];
  for (int i = 0; i < kMr; ++i) c0[i] = c1[i] = c2[i] = vdupq_n_f32(0.f);
  for (int64_t k = 0; k < kc; ++k) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    ND_NEON_ROW(0, a0, 0)
    ND_NEON_ROW(1, a0, 1)
    ND_NEON_ROW(2, a0, 2)
    ND_NEON_ROW(3, a0, 3)
    ND_NEON_ROW(4, a1, 0)
    ND_NEON_ROW(5, a1, 1)
    ND_NEON_ROW(6, a1, 2)
    ND_NEON_ROW(7, a1, 3)
    a += kMr;
    b += kNr;
  }
  const float32x4_t alpha = vdupq_n_f32(ep.alpha);
  float32x4_t bn0 = vdupq_n_f32(0.f), bn1 = bn0, bn2 = bn0;
  if (ep.bias_n && n == kNr) {
    bn0 = vld1q_f32(ep.bias_n);
    bn1 = vld1q_f32(ep.bias_n + 4);
    bn2 = vld1q_f32(ep.bias_n + 8);
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    float32x4_t v0 = vmulq_f32(alpha, c0[i]), v1 = vmulq_f32(alpha, c1[i]), v2 = vmulq_f32(alpha, c2[i]);
    if (ep.bias_m) {
      const float32x4_t bm = vdupq_n_f32(ep.bias_m[i]);
      v0 = vaddq_f32(v0, bm);
      v1 = vaddq_f32(v1, bm);
      v2 = vaddq_f32(v2, bm);
    }
    if (n == kNr) {  // full tile: vector epilogue
      v0 = vaddq_f32(v0, bn0);
      v1 = vaddq_f32(v1, bn1);
      v2 = vaddq_f32(v2, bn2);
      if (ep.beta != 0.f) {
        v0 = vfmaq_n_f32(v0, vld1q_f32(ci), ep.beta);
        v1 = vfmaq_n_f32(v1, vld1q_f32(ci + 4), ep.beta);
        v2 = vfmaq_n_f32(v2, vld1q_f32(ci + 8), ep.beta);
      }
      vst1q_f32(ci, v0);
      vst1q_f32(ci + 4, v1);
      vst1q_f32(ci + 8, v2);
      continue;
    }
    float buf[kNr];
    vst1q_f32(buf, v0);
    vst1q_f32(buf + 4, v1);
    vst1q_f32(buf + 8, v2);
    for (int j = 0; j < n; ++j) {
      float v = buf[j];
      if (ep.bias_n) v += ep.bias_n[j];
      if (ep.beta != 0.f) v += ep.beta * ci[j];
      ci[j] = v;
    }
  }
}
#undef ND_NEON_ROW

void micro_neon(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, const Epilogue& ep) {
  switch (m) {
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

}  // namespace

const Kernels& kernels_neon() {
  static const Kernels k = [] {
    Kernels t;
    t.isa = Isa::Neon;
    t.mr = kMr;
    t.nr = kNr;
    t.mc = kMr * 16;  // A block 128 × kc: 128 KB, within a Neoverse/Cortex-A7x L2
    t.kc = 256;       // B panel 12 × 256 floats = 12 KB, within L1
    t.nc = kNr * 32;  // B block 384 × kc: 384 KB
    t.micro = micro_neon;
    t.pack_rows = pack_rows_generic;
    t.pack_cols = pack_cols_generic;
    t.pack_conv = pack_conv_generic;
    t.dot_rows = dot_rows_generic;
    return t;
  }();
  return k;
}

}  // namespace nd::cpu::gemm
#endif  // aarch64
