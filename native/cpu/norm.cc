// Placeholder: reference norms until the vectorised versions land.
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::cpu {

void group_norm(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups,
                const float* gamma, const float* beta, float eps, bool silu) {
  (void)pool;
  ref::group_norm(x, y, B, C, HW, groups, gamma, beta, eps, silu);
}

void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t C, const float* gamma,
                const float* beta, float eps) {
  pool.parallel_for(M, [&](int64_t b, int64_t e, int) { ref::layer_norm(x + b * C, y + b * C, e - b, C, gamma, beta, eps); });
}

}  // namespace nd::cpu
