// Fused attention: validation, scratch, threading. The arithmetic is in
// cpu/kernels/attention.inc, compiled once per ISA (kernels_*.cc).
#include "cpu/attention.h"

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/aligned.h"
#include "core/errors.h"

namespace nd::cpu {
namespace {

[[noreturn]] void bad(const std::string& what, const char* name, const std::string& got) {
  fail_expected(code::kInvalidArgument, what, std::string("attention ") + name, got);
}

constexpr int64_t kMaxDim = int64_t(1) << 31;

void check_range(int64_t v, int64_t lo, const char* name) {
  if (v < lo || v > kMaxDim)
    bad("an integer in [" + std::to_string(lo) + ", " + std::to_string(kMaxDim) + "]", name, std::to_string(v));
}

// Per calling thread, grown on demand and kept: attention runs hundreds of times per
// U-Net pass and must not allocate each time. A nested call made from inside a pool
// task runs inline on that thread and uses that thread's own buffer.
float* scratch_buffer(size_t floats) {
  thread_local nd::ThreadScratch buffer;
  float* p = buffer.get(floats);
  if (!p)
    fail(code::kOutOfMemory,
         "Could not allocate " + std::to_string(floats * sizeof(float)) + " bytes of attention scratch");
  return p;
}

// Query tiles per task: as many as the ISA allows (each K/V tile is then read once per
// group), but never so many that fewer than 4 tasks per worker remain to balance the load.
int64_t query_group(const AttentionArgs& a, const KernelTable& kernels, int workers) {
  const int64_t q_tiles = (a.nq + kernels.attn_q_tile - 1) / kernels.attn_q_tile;
  int64_t group = kernels.attn_max_group < q_tiles ? kernels.attn_max_group : q_tiles;
  while (group > 1 && a.batch * a.heads * ((q_tiles + group - 1) / group) < 4 * (int64_t)workers) --group;
  return group < 1 ? 1 : group;
}

size_t row_stats_floats(const AttentionArgs& a) { return a.probs_mean ? (size_t)(a.batch * a.heads * a.nq * 2) : 0; }

}  // namespace

void validate_attention(const AttentionArgs& a) {
  check_range(a.batch, 1, "batch");
  check_range(a.heads, 1, "heads");
  check_range(a.head_dim, 1, "head_dim");
  check_range(a.nq, 0, "nq");
  check_range(a.nk, 1, "nk");
  if (!a.q || !a.k || !a.v || !a.out) bad("non-null q, k, v and out pointers", "tensors", "a null pointer");
  const int64_t width = a.heads * a.head_dim;
  if (width > kMaxDim) bad("heads * head_dim <= " + std::to_string(kMaxDim), "heads", std::to_string(width));
  const struct {
    int64_t v;
    const char* name;
  } rows[] = {{a.q_row, "q_row"}, {a.k_row, "k_row"}, {a.v_row, "v_row"}, {a.out_row, "out_row"}};
  for (const auto& r : rows)
    if (r.v < width || r.v > kMaxDim)
      bad("a row stride >= heads * head_dim (" + std::to_string(width) + ")", r.name, std::to_string(r.v));
  const struct {
    int64_t v;
    const char* name;
  } batches[] = {{a.q_batch, "q_batch"}, {a.k_batch, "k_batch"}, {a.v_batch, "v_batch"}, {a.out_batch, "out_batch"}};
  for (const auto& s : batches)
    if (s.v < 0 || s.v > (int64_t(1) << 40)) bad("a non-negative batch stride", s.name, std::to_string(s.v));
  if (a.batch > 1 && a.out_batch < a.nq * a.out_row)
    bad("an out_batch >= nq * out_row (" + std::to_string(a.nq * a.out_row) + ")", "out_batch",
        std::to_string(a.out_batch));
  if (!std::isfinite(a.scale)) bad("a finite number", "scale", std::to_string(a.scale));
}

int64_t attention_default_k_tile(int64_t nk) {
  constexpr int64_t kMax = 128;
  const int64_t tiles = (nk + kMax - 1) / kMax;
  return tiles <= 1 ? nk : (nk + tiles - 1) / tiles;
}

size_t attention_scratch_bytes(const AttentionArgs& a, int threads, const KernelTable& kernels, int64_t k_tile) {
  const int64_t kt = k_tile > 0 ? (k_tile < a.nk ? k_tile : a.nk) : attention_default_k_tile(a.nk);
  const int workers = threads < 1 ? 1 : threads;
  const size_t per_worker = kernels.attention_scratch_floats(a.head_dim, kt, query_group(a, kernels, workers));
  return ((size_t)workers * per_worker + row_stats_floats(a)) * sizeof(float);
}

void attention_with(const KernelTable& kernels, ThreadPool& pool, const AttentionArgs& a, int64_t k_tile) {
  validate_attention(a);
  if (k_tile < 0 || k_tile > kMaxDim) bad("a key tile in [0, 2^31]", "k_tile", std::to_string(k_tile));
  if (a.nq == 0) return;
  AttnPlan plan;
  plan.a = a;
  plan.log2_scale = (float)((double)a.scale * 1.4426950408889634);
  plan.q_tile = kernels.attn_q_tile;
  plan.k_tile = k_tile > 0 ? (k_tile < a.nk ? k_tile : a.nk) : attention_default_k_tile(a.nk);
  plan.q_tiles = (a.nq + plan.q_tile - 1) / plan.q_tile;
  const int workers = pool.size();
  plan.q_group = query_group(a, kernels, workers);

  const size_t per_worker = kernels.attention_scratch_floats(a.head_dim, plan.k_tile, plan.q_group);
  float* scratch = scratch_buffer((size_t)workers * per_worker + row_stats_floats(a));
  plan.row_stats = a.probs_mean ? scratch + (size_t)workers * per_worker : nullptr;

  const int64_t groups = (plan.q_tiles + plan.q_group - 1) / plan.q_group;
  pool.run_tasks(a.batch * a.heads * groups, [&](int64_t task, int worker) {
    kernels.attention_task(plan, scratch + (size_t)worker * per_worker, task);
  });
  if (a.probs_mean)
    pool.run_tasks(a.batch * plan.q_tiles, [&](int64_t task, int worker) {
      kernels.attention_probs_task(plan, scratch + (size_t)worker * per_worker, task);
    });
}

void attention(ThreadPool& pool, const AttentionArgs& args) { attention_with(kernels_active(), pool, args); }

}  // namespace nd::cpu
