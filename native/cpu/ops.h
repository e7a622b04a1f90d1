// The CPU op set, declared once. Activations are contiguous f32 in PyTorch
// order (NCHW; token-major [B, N, C] inside transformers). Weights keep their
// checkpoint dtype (f32/f16/bf16) and layout ([out, in] for Linear,
// [Cout, Cin, kh, kw] for Conv2d) and are widened inside the kernels.
// Each op has a naive single-threaded twin in cpu/reference.h used as the test oracle.
#pragma once
#include <cstdint>

#include "backend/types.h"
#include "core/dtype.h"
#include "core/threadpool.h"

namespace nd::cpu {

// The argument types are the backend interface's (backend/types.h); the CPU backend (backend/cpu) forwards here.
using WeightRef = ::nd::WeightRef;
using AttentionArgs = ::nd::AttentionArgs;

// y[m, n] = sum_k x[m, k] * W[n, k] + bias[n]   (PyTorch Linear: W is [N, K])
// x rows are ldx apart, y rows ldy apart; accumulate adds into y instead of overwriting.
void linear(ThreadPool& pool, const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N,
            const float* bias, float* y, int64_t ldy, bool accumulate = false);

// C[M, N] = alpha * op(A) op(B) + beta * C with f32 operands; op transposes when trans is set.
void gemm_f32(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// y[B, Cout, Ho, Wo] = conv(x[B, Cin, H, W], W[Cout, Cin, kh, kw]) + bias; Ho = (H + 2 pad - kh) / stride + 1.
void conv2d(ThreadPool& pool, const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight,
            int64_t Cout, int kh, int kw, int stride, int pad, const float* bias, float* y);

// Group norm over x[B, C, HW] (groups divide C), optional fused SiLU. y may equal x.
void group_norm(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups,
                const float* gamma, const float* beta, float eps, bool silu);

// Layer norm over the last dimension of x[M, C]. y may equal x.
void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t C, const float* gamma, const float* beta,
                float eps);

void silu(ThreadPool& pool, float* x, int64_t n);        // x * sigmoid(x), in place
void gelu(ThreadPool& pool, float* x, int64_t n);        // exact (erf) GELU, in place
void quick_gelu(ThreadPool& pool, float* x, int64_t n);  // x * sigmoid(1.702 x), in place
// x[M, 2N] -> y[M, N]: y = a * gelu(g) with a = x[:, :N], g = x[:, N:] (diffusers GEGLU)
void geglu(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t N);
void add(ThreadPool& pool, const float* a, const float* b, float* y, int64_t n);  // y may alias a or b
// x[BC, H, W] -> y[BC, 2H, 2W]
void upsample_nearest2x(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H, int64_t W);
void softmax_rows(ThreadPool& pool, float* x, int64_t rows, int64_t cols);  // in place, numerically stable

// Fused scaled dot-product attention (AttentionArgs in backend/types.h).
void attention(ThreadPool& pool, const AttentionArgs& args);

}  // namespace nd::cpu
