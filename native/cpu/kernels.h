// Run-time dispatch for the vectorised attention, norm and elementwise kernels.
// Each ISA (AVX-512, AVX2+FMA, portable) compiles the same cpu/kernels/*.inc
// sources into one KernelTable; the ops in attention.cc / norm.cc /
// elementwise.cc pick the best table the CPU supports and do the threading.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/ops.h"

namespace nd::cpu {

// One fused-attention call, as the per-ISA task functions see it.
struct AttnPlan {
  AttentionArgs a;
  float log2_scale = 0.f;      // scale · log2(e): folded into the packed queries so softmax runs on exp2
  int64_t q_tile = 0;          // queries per tile (a multiple of the vector width)
  int64_t k_tile = 0;          // keys per tile
  int64_t q_tiles = 0;         // ceil(nq / q_tile)
  int64_t q_group = 1;         // query tiles per task, sharing each pass over the keys (<= attn_max_group)
  float* row_stats = nullptr;  // [batch, heads, nq, 2]: final (max, sum) per row, kept for the probs pass
};

struct KernelTable {
  const char* name;
  int lanes;
  int64_t attn_q_tile;     // queries per attention tile
  int64_t attn_max_group;  // most query tiles one attention task may hold
  // Floats of per-worker scratch one attention task needs (head_dim d, key tile kt, q_group tiles).
  size_t (*attention_scratch_floats)(int64_t d, int64_t kt, int64_t group);
  // Task t of batch·heads·ceil(q_tiles / q_group): q_group query tiles of one head, all keys, online softmax.
  void (*attention_task)(const AttnPlan& plan, float* scratch, int64_t task);
  // Task t of batch·q_tiles: head-averaged probabilities for one query tile (needs row_stats).
  void (*attention_probs_task)(const AttnPlan& plan, float* scratch, int64_t task);

  // Group norm of one (batch, group) slab: x/y point at its first channel, cg channels of hw values.
  void (*group_norm_slab)(const float* x, float* y, int64_t cg, int64_t hw, const float* gamma, const float* beta,
                          float eps, bool silu);
  void (*layer_norm_rows)(const float* x, float* y, int64_t rows, int64_t c, const float* gamma, const float* beta,
                          float eps);
  void (*softmax_rows)(float* x, int64_t rows, int64_t cols);
  void (*silu)(float* x, int64_t n);
  void (*gelu)(float* x, int64_t n);
  void (*quick_gelu)(float* x, int64_t n);
  void (*geglu_rows)(const float* x, float* y, int64_t rows, int64_t n);
};

const KernelTable& kernels_generic();
const KernelTable* kernels_avx2();    // nullptr when not built for x86-64 or the CPU lacks AVX2+FMA
const KernelTable* kernels_avx512();  // nullptr when not built for x86-64 or the CPU lacks AVX-512F/BW/VL/DQ
const KernelTable* kernels_neon();    // nullptr when not built for aarch64
// The best table this CPU supports (chosen once).
const KernelTable& kernels_best();
// What the ops use: the override when one is set, else kernels_best().
const KernelTable& kernels_active();
// Pins kernels_active() to a table (tests of the AVX2 / portable paths); nullptr restores the best.
// Process-wide: set it only around synchronous calls.
void set_kernels_override(const KernelTable* table);
// "avx512" | "avx2" | "neon" | "generic" (alias "scalar") | "auto"; nullptr when that ISA is unavailable here.
const KernelTable* kernels_named(const char* name);

}  // namespace nd::cpu
