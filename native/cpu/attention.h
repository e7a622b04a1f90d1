// Fused attention beyond the ops.h entry point: validation, the scratch it needs,
// and a variant pinned to one ISA (tests exercise every ISA the CPU supports).
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"
#include "cpu/ops.h"

namespace nd::cpu {

// Throws nd::Error(ERR_INVALID_ARGUMENT) for any size, stride or pointer attention() cannot use.
void validate_attention(const AttentionArgs& a);

// Keys per tile when the caller does not choose: tiles of at most 128 keys, balanced so
// the last one is not a sliver (nk = 77 is one tile; 4096 is 32 tiles of 128).
int64_t attention_default_k_tile(int64_t nk);

// Scratch bytes attention() allocates for this call with `threads` workers: one
// O(tile · (k_tile + 2·head_dim)) block per worker, plus O(batch · heads · nq) row
// statistics when probs_mean is requested. Independent of nq·nk.
size_t attention_scratch_bytes(const AttentionArgs& a, int threads, const KernelTable& kernels = kernels_active(),
                               int64_t k_tile = 0);

// attention() on a given kernel table; k_tile 0 = attention_default_k_tile(nk).
void attention_with(const KernelTable& kernels, ThreadPool& pool, const AttentionArgs& a, int64_t k_tile = 0);

}  // namespace nd::cpu
