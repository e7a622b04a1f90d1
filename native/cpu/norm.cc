// Group norm, layer norm and row softmax: validation and threading; the vector
// code is in cpu/kernels/norm.inc (one copy per ISA, see kernels.h).
#include <string>

#include "core/errors.h"
#include "cpu/kernels.h"
#include "cpu/ops.h"

namespace nd::cpu {
namespace {

void check_nonneg(int64_t v, const char* name) {
  if (v < 0) fail_expected(code::kInvalidArgument, "a non-negative size", name, std::to_string(v));
}

// Items per parallel chunk so each chunk does at least ~32k floats of work.
int64_t grain_for(int64_t floats_per_item) {
  constexpr int64_t kMinChunk = 32768;
  return floats_per_item >= kMinChunk ? 1 : kMinChunk / (floats_per_item > 0 ? floats_per_item : 1);
}

}  // namespace

void group_norm(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups,
                const float* gamma, const float* beta, float eps, bool silu) {
  check_nonneg(B, "group_norm batch");
  check_nonneg(HW, "group_norm HW");
  if (groups < 1 || C < 1 || C % groups != 0)
    fail_expected(code::kInvalidArgument, "a channel count divisible by the group count " + std::to_string(groups),
                  "group_norm C", std::to_string(C));
  if (!(eps >= 0.f))
    fail_expected(code::kInvalidArgument, "a non-negative epsilon", "group_norm eps", std::to_string(eps));
  if (B == 0 || HW == 0) return;
  const int64_t cg = C / groups;
  const KernelTable& k = kernels_active();
  pool.parallel_for(
      B * groups,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t s = begin; s < end; ++s) {
          const int64_t g = s % groups;
          const int64_t offset = s * cg * HW;  // slabs of consecutive (batch, group) are contiguous
          k.group_norm_slab(x + offset, y + offset, cg, HW, gamma ? gamma + g * cg : nullptr,
                            beta ? beta + g * cg : nullptr, eps, silu);
        }
      },
      grain_for(cg * HW));
}

void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t C, const float* gamma, const float* beta,
                float eps) {
  check_nonneg(M, "layer_norm rows");
  if (C < 1) fail_expected(code::kInvalidArgument, "a positive size", "layer_norm C", std::to_string(C));
  if (!(eps >= 0.f))
    fail_expected(code::kInvalidArgument, "a non-negative epsilon", "layer_norm eps", std::to_string(eps));
  const KernelTable& k = kernels_active();
  pool.parallel_for(
      M, [&](int64_t b, int64_t e, int) { k.layer_norm_rows(x + b * C, y + b * C, e - b, C, gamma, beta, eps); },
      grain_for(C));
}

void softmax_rows(ThreadPool& pool, float* x, int64_t rows, int64_t cols) {
  check_nonneg(rows, "softmax rows");
  check_nonneg(cols, "softmax cols");
  if (cols == 0) return;
  const KernelTable& k = kernels_active();
  pool.parallel_for(
      rows, [&](int64_t b, int64_t e, int) { k.softmax_rows(x + b * cols, e - b, cols); }, grain_for(cols));
}

}  // namespace nd::cpu
