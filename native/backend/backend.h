// The backend interface: what a model graph may ask of a device. The models (native/models) and the layers
// (native/nn) call only this; the CPU backend (backend/cpu, over the kernels in native/cpu) implements it,
// and a CUDA backend (backend/cuda holds its kernels today) plugs in as another implementation without any
// model file changing. Modelled on ggml's backend split: the interface knows nothing of a device's headers.
//
// Memory: activations are f32, contiguous, PyTorch order (NCHW; token-major [B, N, C] in transformers),
// allocated through alloc() from the call's Arena. Weights are WeightRefs in their checkpoint dtype.
// Compute resources: every op receives the process compute pool (core/threadpool.h, handed in at compute
// time by the caller, never owned by a model); a GPU backend uses it only for host-side work.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/types.h"
#include "core/arena.h"
#include "core/threadpool.h"

namespace nd {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- tensor allocation: n floats of activation memory from the call's arena (released by arena marks).
  virtual float* alloc(Arena& arena, size_t n) const = 0;

  // ---- the op set (shapes as in cpu/ops.h, which is the CPU implementation of each).
  // y[m, n] = sum_k x[m, k] W[n, k] + bias[n]; x rows ldx apart, y rows ldy apart; accumulate adds into y.
  virtual void linear(ThreadPool& pool, const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N,
                      const float* bias, float* y, int64_t ldy, bool accumulate = false) const = 0;
  // C[M, N] = alpha op(A) op(B) + beta C, f32 operands.
  virtual void gemm_f32(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                        const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                        int64_t ldc) const = 0;
  // y[B, Cout, Ho, Wo] = conv(x[B, Cin, H, W], W[Cout, Cin, kh, kw]) + bias.
  virtual void conv2d(ThreadPool& pool, const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight,
                      int64_t Cout, int kh, int kw, int stride, int pad, const float* bias, float* y) const = 0;
  // Group norm over x[B, C, HW], optional fused SiLU; y may equal x.
  virtual void group_norm(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups,
                          const float* gamma, const float* beta, float eps, bool silu) const = 0;
  // Layer norm over the last dimension of x[M, C]; y may equal x.
  virtual void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t C, const float* gamma,
                          const float* beta, float eps) const = 0;
  virtual void silu(ThreadPool& pool, float* x, int64_t n) const = 0;        // in place
  virtual void gelu(ThreadPool& pool, float* x, int64_t n) const = 0;        // exact (erf), in place
  virtual void quick_gelu(ThreadPool& pool, float* x, int64_t n) const = 0;  // x sigmoid(1.702 x), in place
  // x[M, 2N] -> y[M, N] = x[:, :N] * gelu(x[:, N:])
  virtual void geglu(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t N) const = 0;
  virtual void add(ThreadPool& pool, const float* a, const float* b, float* y, int64_t n) const = 0;  // y may alias
  // x[BC, H, W] -> y[BC, 2H, 2W]
  virtual void upsample_nearest2x(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H,
                                  int64_t W) const = 0;
  virtual void softmax_rows(ThreadPool& pool, float* x, int64_t rows, int64_t cols) const = 0;  // in place
  // ---- data movement
  // x[B, C, N] -> y[B, N, C] (feature maps to token rows)
  virtual void to_tokens(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t N) const = 0;
  // y[B, C, N] = residual[B, C, N] + t[B, N, C] transposed (token rows back onto feature maps); y may be residual
  virtual void add_from_tokens(ThreadPool& pool, const float* t, const float* residual, float* y, int64_t B, int64_t C,
                               int64_t N) const = 0;
  // y[B, Ca + Cb, HW] = a[B, Ca, HW] then b[B, Cb, HW] on channels
  virtual void concat_channels(ThreadPool& pool, const float* a, int64_t Ca, const float* b, int64_t Cb, float* y,
                               int64_t B, int64_t HW) const = 0;
  // x[BC, H, W] -> y[BC, Ho, Wo], nearest (F.interpolate mode="nearest": source index floor(dst · in / out))
  virtual void resize_nearest(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H, int64_t W, int64_t Ho,
                              int64_t Wo) const = 0;
  // Fused softmax(scale Q Kᵀ) V (AttentionArgs in backend/types.h).
  virtual void attention(ThreadPool& pool, const AttentionArgs& args) const = 0;
};

// The backend the models run on. Today the CPU backend (backend/cpu/cpu_backend.cc); a device choice
// (ND_DEVICE, a CUDA build) is made here, not in any model.
const Backend& default_backend();

}  // namespace nd
