// Linear and general f32 GEMM on the blocked driver (gemm_driver.h) with run-time ISA dispatch.
#include <string>

#include "core/errors.h"
#include "cpu/gemm_driver.h"
#include "cpu/ops.h"

namespace nd::cpu {

namespace {

void check_size(int64_t v, const char* name) {
  if (v < 0) fail_expected(code::kInvalidArgument, "a non-negative size", name, std::to_string(v));
}
void check_ld(int64_t ld, int64_t min, const char* name) {
  if (ld < min)
    fail_expected(code::kInvalidArgument, "a leading dimension of at least " + std::to_string(min), name,
                  std::to_string(ld));
}
void check_weight_dtype(DType t) {
  if (t != DType::F32 && t != DType::F16 && t != DType::BF16)
    fail_expected(code::kUnsupported, "an F32, F16 or BF16 weight", "linear weight", dtype_name(t));
}

// Rows at or below this use the unpacked matrix-vector path (the packed path would spend more
// time transposing W than multiplying).
constexpr int64_t kDotRowsMax = 4;

}  // namespace

void linear(ThreadPool& pool, const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N,
            const float* bias, float* y, int64_t ldy, bool accumulate) {
  check_size(M, "linear M");
  check_size(K, "linear K");
  check_size(N, "linear N");
  check_weight_dtype(W.dtype);
  if (M == 0 || N == 0) return;
  check_ld(ldx, K, "linear ldx");
  check_ld(ldy, N, "linear ldy");
  if ((K > 0 && (!x || !W.data)) || !y) fail(code::kInvalidArgument, "linear: null operand");
  const gemm::Kernels& kn = gemm::active_kernels();
  if (M <= kDotRowsMax && K > 0) {
    const gemm::RowsSource w{W.data, W.dtype, K};
    pool.parallel_for(
        N, [&](int64_t n0, int64_t n1, int) { kn.dot_rows(x, M, ldx, w, n0, n1, K, bias, y, ldy, accumulate); },
        std::max<int64_t>(16, 65536 / std::max<int64_t>(K * M, 1)));
    return;
  }
  gemm::Epilogue ep;
  ep.beta = accumulate ? 1.f : 0.f;
  ep.bias_n = bias;
  gemm::run(pool, kn, M, N, K, gemm::Operand::of_rows(x, DType::F32, ldx), gemm::Operand::of_rows(W.data, W.dtype, K),
            y, ldy, ep);
}

void gemm_f32(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_size(M, "gemm M");
  check_size(N, "gemm N");
  check_size(K, "gemm K");
  if (M == 0 || N == 0) return;
  check_ld(lda, transA ? M : K, "gemm lda");
  check_ld(ldb, transB ? K : N, "gemm ldb");
  check_ld(ldc, N, "gemm ldc");
  if ((K > 0 && (!A || !B)) || !C) fail(code::kInvalidArgument, "gemm_f32: null operand");
  // op(A)[m, k] and op(B)[k, n] as "row, depth" operands of the driver.
  const gemm::Operand a = transA ? gemm::Operand::of_cols(A, lda) : gemm::Operand::of_rows(A, DType::F32, lda);
  const gemm::Operand b = transB ? gemm::Operand::of_rows(B, DType::F32, ldb) : gemm::Operand::of_cols(B, ldb);
  gemm::Epilogue ep;
  ep.alpha = alpha;
  ep.beta = beta;
  gemm::run(pool, gemm::active_kernels(), M, N, K, a, b, C, ldc, ep);
}

}  // namespace nd::cpu
