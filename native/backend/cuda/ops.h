// CUDA kernels for the op families of native/cpu/ops.h. All pointers are device pointers;
// every launcher checks its launch and returns without synchronising (use synchronize()).
#pragma once
#include <cstdint>

namespace nd::cuda {

// Elementwise (n elements, any n >= 0).
void add(const float* a, const float* b, float* out, int64_t n);
void silu(const float* x, float* out, int64_t n);
void gelu(const float* x, float* out, int64_t n);  // exact (erf) GELU, as torch's default
void widen_f16(const uint16_t* in, float* out, int64_t n);

// Linear layer: out[M, N] = a[M, K] · w[N, K]ᵀ (+ bias[N] when non-null). The weight keeps its
// file dtype (PyTorch [out, in] layout) and is widened to f32 while its tile is staged.
void gemm_f32_f16w(const float* a, const uint16_t* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k);
void gemm_f32_f32w(const float* a, const float* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k);

// Shapes the GEMM accepts (each dimension below 2^31 and M·N, N·K, M·K indexable).
void check_gemm_shape(int64_t m, int64_t n, int64_t k);

}  // namespace nd::cuda
