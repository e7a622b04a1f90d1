// Elementwise kernels: grid-stride loops so that any n runs with a bounded grid.
#include <cuda_fp16.h>

#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/ops.h"

namespace nd::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return (unsigned)std::min<int64_t>(std::max<int64_t>(b, 1), 65535 * 8);
}

__global__ void add_kernel(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void silu_kernel(const float* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    out[i] = v / (1.f + expf(-v));
  }
}

__global__ void gelu_kernel(const float* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    out[i] = 0.5f * v * (1.f + erff(v * 0.70710678118654752f));
  }
}

__global__ void widen_f16_kernel(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = __half2float(__ushort_as_half(in[i]));
}

}  // namespace

void add(const float* a, const float* b, float* out, int64_t n) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads>>>(a, b, out, n);
  ND_CUDA_CHECK(cudaGetLastError());
}

void silu(const float* x, float* out, int64_t n) {
  if (n <= 0) return;
  silu_kernel<<<blocks_for(n), kThreads>>>(x, out, n);
  ND_CUDA_CHECK(cudaGetLastError());
}

void gelu(const float* x, float* out, int64_t n) {
  if (n <= 0) return;
  gelu_kernel<<<blocks_for(n), kThreads>>>(x, out, n);
  ND_CUDA_CHECK(cudaGetLastError());
}

void widen_f16(const uint16_t* in, float* out, int64_t n) {
  if (n <= 0) return;
  widen_f16_kernel<<<blocks_for(n), kThreads>>>(in, out, n);
  ND_CUDA_CHECK(cudaGetLastError());
}

}  // namespace nd::cuda
