// Placeholder: reference elementwise ops until the vectorised versions land.
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::cpu {

void silu(ThreadPool& pool, float* x, int64_t n) {
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) { ref::silu(x + b, e - b); }, 4096);
}
void gelu(ThreadPool& pool, float* x, int64_t n) {
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) { ref::gelu(x + b, e - b); }, 4096);
}
void quick_gelu(ThreadPool& pool, float* x, int64_t n) {
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) { ref::quick_gelu(x + b, e - b); }, 4096);
}
void geglu(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t N) {
  pool.parallel_for(M, [&](int64_t b, int64_t e, int) { ref::geglu(x + b * 2 * N, y + b * N, e - b, N); });
}
void add(ThreadPool& pool, const float* a, const float* b, float* y, int64_t n) {
  pool.parallel_for(n, [&](int64_t s, int64_t e, int) { ref::add(a + s, b + s, y + s, e - s); }, 4096);
}
void upsample_nearest2x(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H, int64_t W) {
  pool.parallel_for(BC, [&](int64_t b, int64_t e, int) { ref::upsample_nearest2x(x + b * H * W, y + b * 4 * H * W, e - b, H, W); });
}
void softmax_rows(ThreadPool& pool, float* x, int64_t rows, int64_t cols) {
  pool.parallel_for(rows, [&](int64_t b, int64_t e, int) { ref::softmax_rows(x + b * cols, e - b, cols); });
}

}  // namespace nd::cpu
