// Naive single-threaded implementations of every op in cpu/ops.h, with the same
// signatures minus the pool. They are the oracle for kernel tests, nothing else.
#pragma once
#include "cpu/ops.h"

namespace nd::ref {
using cpu::AttentionArgs;
using cpu::WeightRef;

void linear(const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N, const float* bias, float* y,
            int64_t ldy, bool accumulate);
void gemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void conv2d(const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight, int64_t Cout, int kh,
            int kw, int stride, int pad, const float* bias, float* y);
void group_norm(const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups, const float* gamma,
                const float* beta, float eps, bool silu);
void layer_norm(const float* x, float* y, int64_t M, int64_t C, const float* gamma, const float* beta, float eps);
void silu(float* x, int64_t n);
void gelu(float* x, int64_t n);
void quick_gelu(float* x, int64_t n);
void geglu(const float* x, float* y, int64_t M, int64_t N);
void add(const float* a, const float* b, float* y, int64_t n);
void upsample_nearest2x(const float* x, float* y, int64_t BC, int64_t H, int64_t W);
void softmax_rows(float* x, int64_t rows, int64_t cols);
void attention(const AttentionArgs& args);
}  // namespace nd::ref
