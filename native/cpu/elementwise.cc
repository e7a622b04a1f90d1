// Elementwise ops: activations dispatch to cpu/kernels/elementwise.inc (one copy
// per ISA); add and nearest upsampling are memory-bound loops the compiler
// vectorises for the baseline ISA.
#include <string>

#include "core/errors.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"

namespace nd::cpu {
namespace {

void check_nonneg(int64_t v, const char* name) {
  if (v < 0) fail_expected(code::kInvalidArgument, "a non-negative size", name, std::to_string(v));
}

constexpr int64_t kGrain = 16384;  // floats per parallel chunk: below this, waking a thread costs more than it saves

int64_t rows_grain(int64_t floats_per_row) {
  return floats_per_row >= kGrain ? 1 : kGrain / (floats_per_row > 0 ? floats_per_row : 1);
}

void map(ThreadPool& pool, float* x, int64_t n, void (*fn)(float*, int64_t), const char* name) {
  check_nonneg(n, name);
  pool.parallel_for(
      n, [&](int64_t b, int64_t e, int) { fn(x + b, e - b); }, kGrain);
}

}  // namespace

void silu(ThreadPool& pool, float* x, int64_t n) { map(pool, x, n, kernels_active().silu, "silu n"); }
void gelu(ThreadPool& pool, float* x, int64_t n) { map(pool, x, n, kernels_active().gelu, "gelu n"); }
void quick_gelu(ThreadPool& pool, float* x, int64_t n) { map(pool, x, n, kernels_active().quick_gelu, "quick_gelu n"); }

void geglu(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t N) {
  check_nonneg(M, "geglu rows");
  check_nonneg(N, "geglu N");
  const KernelTable& k = kernels_active();
  pool.parallel_for(
      M, [&](int64_t b, int64_t e, int) { k.geglu_rows(x + b * 2 * N, y + b * N, e - b, N); }, rows_grain(2 * N));
}

void add(ThreadPool& pool, const float* a, const float* b, float* y, int64_t n) {
  check_nonneg(n, "add n");
  pool.parallel_for(
      n,
      [&](int64_t s, int64_t e, int) {
        for (int64_t i = s; i < e; ++i) y[i] = a[i] + b[i];
      },
      4 * kGrain);
}

void upsample_nearest2x(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H, int64_t W) {
  check_nonneg(BC, "upsample channels");
  check_nonneg(H, "upsample H");
  check_nonneg(W, "upsample W");
  // One task item = one input row, which becomes two identical output rows.
  pool.parallel_for(
      BC * H,
      [&](int64_t b, int64_t e, int) {
        for (int64_t r = b; r < e; ++r) {
          const float* xr = x + r * W;
          float* y0 = y + r * 4 * W;  // output rows 2i and 2i+1 of the same channel
          float* y1 = y0 + 2 * W;
          for (int64_t j = 0; j < W; ++j) y0[2 * j] = y0[2 * j + 1] = xr[j];
          for (int64_t j = 0; j < 2 * W; ++j) y1[j] = y0[j];
        }
      },
      rows_grain(4 * W));
}

}  // namespace nd::cpu
