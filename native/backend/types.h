// The argument types of the backend op set, shared by the interface (backend/backend.h), the models that call
// it and the backends that implement it (native/cpu, native/backend/cuda). Activations are contiguous f32 in
// PyTorch order; weights keep their checkpoint dtype and layout and are widened inside the kernels.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace nd {

// A weight tensor used zero-copy in its file dtype (f32/f16/bf16).
struct WeightRef {
  const void* data = nullptr;
  DType dtype = DType::F32;
};

// Fused scaled dot-product attention, out = softmax(scale · Q Kᵀ) V per (batch, head),
// never materialising the [Nq, Nk] matrix. Token rows of q/k/v/out are `*_row` floats
// apart and batches `*_batch` floats apart; head h uses columns [h·d, (h+1)·d).
struct AttentionArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
  int64_t batch = 1, heads = 1, nq = 0, nk = 0, head_dim = 0;
  int64_t q_row = 0, k_row = 0, v_row = 0, out_row = 0;
  int64_t q_batch = 0, k_batch = 0, v_batch = 0, out_batch = 0;
  float scale = 1.f;
  // Optional: head-averaged probabilities [batch, nq, nk] (S-CFG). Only calls that ask pay for it.
  float* probs_mean = nullptr;
};

}  // namespace nd
