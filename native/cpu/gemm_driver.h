// The ISA-agnostic blocked GEMM (Goto/BLIS loop nest) over abstract operands:
//   C[M, N] = alpha · A·Bᵀ + beta · C + bias, A given as rows m with depth k, B as rows n with depth k.
// Splits the work over the pool so that each thread packs as little as possible and all stay busy.
#pragma once
#include <cstdint>

#include "core/threadpool.h"
#include "cpu/gemm_kernels.h"

namespace nd::cpu::gemm {

struct Operand {
  enum class Kind { Rows, Cols, Conv };
  Kind kind = Kind::Rows;
  RowsSource rows;
  ColsSource cols;
  ConvSource conv;

  static Operand of_rows(const void* data, DType dtype, int64_t ld) {
    Operand o;
    o.kind = Kind::Rows;
    o.rows = {data, dtype, ld};
    return o;
  }
  static Operand of_cols(const float* data, int64_t ld) {
    Operand o;
    o.kind = Kind::Cols;
    o.cols = {data, ld};
    return o;
  }
  static Operand of_conv(const ConvSource& s) {
    Operand o;
    o.kind = Kind::Conv;
    o.conv = s;
    return o;
  }
};

// Runs the product with the given kernel table; K may be 0 (C = beta·C + bias).
void run(ThreadPool& pool, const Kernels& kernels, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b,
         float* c, int64_t ldc, const Epilogue& ep);

// Threads the product would use and how it splits (exposed for tests and the benchmark).
struct Split {
  int tm = 1, tn = 1;
};
Split choose_split(const Kernels& kernels, int threads, int64_t M, int64_t N, int64_t K);

}  // namespace nd::cpu::gemm
