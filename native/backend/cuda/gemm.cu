// Tiled GEMM for linear layers: out[M, N] = a[M, K] · w[N, K]ᵀ + bias. A block computes a
// 64×64 tile of out with 256 threads (4×4 outputs each, strided by 16 so shared-memory reads
// are broadcast or consecutive); K advances 16 at a time through shared memory. Weights stay
// f16 in device memory and are widened when staged, halving their bandwidth.
#include <cuda_fp16.h>

#include <climits>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/ops.h"

namespace nd::cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 16, kThreadsX = 16, kThreadsY = 16;
constexpr int kPerThread = kBM / kThreadsY;  // 4 rows and 4 columns per thread

__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ float widen(uint16_t v) { return __half2float(__ushort_as_half(v)); }

template <typename W>
__global__ void __launch_bounds__(kThreadsX* kThreadsY)
    gemm_kernel(const float* __restrict__ a, const W* __restrict__ w, const float* __restrict__ bias,
                float* __restrict__ out, int m, int n, int k) {
  // Stored k-major so the inner loop reads a row of each tile. +1 pad avoids bank conflicts on the stores.
  __shared__ float as[kBK][kBM + 1];
  __shared__ float ws[kBK][kBN + 1];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kThreadsX + tx;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  float acc[kPerThread][kPerThread] = {};

  for (int k0 = 0; k0 < k; k0 += kBK) {
    // Each thread stages 4 elements of each tile; 16 consecutive threads read 16 consecutive k.
#pragma unroll
    for (int r = 0; r < (kBM * kBK) / (kThreadsX * kThreadsY); ++r) {
      const int e = tid + r * kThreadsX * kThreadsY;
      const int row = e / kBK, kk = e % kBK;
      const int gk = k0 + kk;
      const int gm = m0 + row, gn = n0 + row;
      as[kk][row] = (gm < m && gk < k) ? a[(size_t)gm * k + gk] : 0.f;
      ws[kk][row] = (gn < n && gk < k) ? widen(w[(size_t)gn * k + gk]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kBK; ++kk) {
      float av[kPerThread], wv[kPerThread];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) av[i] = as[kk][ty + i * kThreadsY];
#pragma unroll
      for (int j = 0; j < kPerThread; ++j) wv[j] = ws[kk][tx + j * kThreadsX];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i)
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) acc[i][j] = fmaf(av[i], wv[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int gm = m0 + ty + i * kThreadsY;
    if (gm >= m) continue;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int gn = n0 + tx + j * kThreadsX;
      if (gn < n) out[(size_t)gm * n + gn] = acc[i][j] + (bias ? bias[gn] : 0.f);
    }
  }
}

template <typename W>
void launch(const float* a, const W* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k) {
  check_gemm_shape(m, n, k);
  if (m == 0 || n == 0) return;
  const dim3 block(kThreadsX, kThreadsY);
  const dim3 grid((unsigned)((n + kBN - 1) / kBN), (unsigned)((m + kBM - 1) / kBM));
  gemm_kernel<W><<<grid, block>>>(a, w, bias, out, (int)m, (int)n, (int)k);
  ND_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void check_gemm_shape(int64_t m, int64_t n, int64_t k) {
  if (m < 0 || n < 0 || k < 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    fail(code::kInvalidArgument, "Expected GEMM dimensions in [0, 2^31) but received M=" + std::to_string(m) +
                                     " N=" + std::to_string(n) + " K=" + std::to_string(k));
  if ((m + kBM - 1) / kBM > 65535)
    fail(code::kInvalidArgument,
         "Expected at most " + std::to_string(65535 * kBM) + " rows for the GEMM but received " + std::to_string(m));
}

void gemm_f32_f16w(const float* a, const uint16_t* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k) {
  launch(a, w, bias, out, m, n, k);
}

void gemm_f32_f32w(const float* a, const float* w, const float* bias, float* out, int64_t m, int64_t n, int64_t k) {
  launch(a, w, bias, out, m, n, k);
}

}  // namespace nd::cuda
