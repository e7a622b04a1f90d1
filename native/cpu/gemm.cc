// Placeholder: row-parallel reference GEMM until the blocked kernels land.
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::cpu {

void linear(ThreadPool& pool, const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N,
            const float* bias, float* y, int64_t ldy, bool accumulate) {
  pool.parallel_for(M, [&](int64_t b, int64_t e, int) {
    ref::linear(x + b * ldx, e - b, K, ldx, W, N, bias, y + b * ldy, ldy, accumulate);
  });
}

void gemm_f32(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  pool.parallel_for(M, [&](int64_t b, int64_t e, int) {
    ref::gemm_f32(transA, transB, e - b, N, K, alpha, transA ? A + b : A + b * lda, lda, B, ldb, beta, C + b * ldc, ldc);
  });
}

}  // namespace nd::cpu
