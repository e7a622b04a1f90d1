// The layer vocabulary every model is assembled from (U-Net, layered U-Net, VAE, CLIP/OpenCLIP): the
// parameterised primitives Linear, Conv2d, GroupNorm and LayerNorm, the sinusoidal timestep embedding and the
// NCHW activation view. Each layer is loaded once, at model construction, from the checkpoint names it mirrors
// (`<name>.weight`, `<name>.bias`), shape-checked there, and run through the backend interface
// (backend/backend.h) with the call's Compute (backend, pool, arena, cancel flag) handed in at forward time.
// The composite blocks (ResBlock, SpatialTransformer, Down/Upsample) are in nn/blocks.h.
#pragma once
#include <cstdint>
#include <string>

#include "backend/compute.h"
#include "backend/types.h"
#include "core/tensor.h"
#include "core/weights.h"

namespace nd::nn {

// An NCHW activation view (memory owned by the call's arena or the caller).
struct Act {
  float* data = nullptr;
  int64_t B = 0, C = 0, H = 0, W = 0;
  int64_t numel() const { return B * C * H * W; }
};

// ---- checked lookups: every tensor a graph uses is looked up and checked once, at construction, so a wrong
// checkpoint fails with a message naming the tensor instead of computing garbage later.
// The tensor `name` with shape `shape` (or `alt` when given, e.g. [C, C] for a 1x1 conv stored as Linear).
const Tensor& checked_tensor(const WeightStore& store, const std::string& name, const Shape& shape,
                             const Shape& alt = {});
// A matrix / conv kernel used zero-copy in its file dtype (f32, f16 or bf16).
WeightRef checked_matrix(const WeightStore& store, const std::string& name, const Shape& shape, const Shape& alt = {});
// A small parameter (bias, norm scale, embedding table) widened to f32 once and cached by the store.
const float* checked_f32(const WeightStore& store, const std::string& name, const Shape& shape);

// y[M, out] = x[M, in] Wᵀ + b (PyTorch Linear, W [out, in]); `name`.weight, `name`.bias.
struct Linear {
  WeightRef weight;
  const float* bias = nullptr;  // null: no bias
  int64_t in = 0, out = 0;

  // weight [out, in] (or exactly `stored` when given, e.g. a 1x1 conv's [out, in, 1, 1]: the same product on
  // token rows); the bias [out] when `with_bias`.
  static Linear load(const WeightStore& w, const std::string& name, int64_t out, int64_t in, bool with_bias,
                     const Shape& stored = {});
  // x rows are ldx apart, y rows ldy apart (ldx = in, ldy = out when 0); accumulate adds into y.
  void forward(Compute& c, const float* x, int64_t M, float* y, int64_t ldy = 0, bool accumulate = false,
               int64_t ldx = 0) const;
};

// y[B, cout, Ho, Wo] = conv(x[B, cin, H, W]) + bias, square kernel; `name`.weight [cout, cin, k, k], `name`.bias.
struct Conv2d {
  WeightRef weight;
  const float* bias = nullptr;
  int64_t cin = 0, cout = 0;
  int kernel = 1, stride = 1, pad = 0;
  bool present = false;

  // pad < 0: "same" padding kernel / 2. `alt`: another accepted weight shape (a 1x1 kernel stored as [cout, cin]).
  static Conv2d load(const WeightStore& w, const std::string& name, int64_t cout, int64_t cin, int kernel,
                     int stride = 1, int pad = -1, const Shape& alt = {});
  // With `bias_override`, that vector [cout] replaces the bias (the ResBlock folds its time embedding in).
  void forward(Compute& c, const float* x, int64_t B, int64_t H, int64_t W, float* y,
               const float* bias_override = nullptr) const;
  int64_t out_size(int64_t in) const { return (in + 2 * pad - kernel) / stride + 1; }
};

// Group norm over [B, C, H·W] (optionally fused SiLU); `name`.weight, `name`.bias [C].
struct GroupNorm {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int64_t channels = 0;
  int groups = 32;
  float eps = 1e-5f;

  static GroupNorm load(const WeightStore& w, const std::string& name, int64_t channels, int groups, float eps);
  void forward(Compute& c, const float* x, float* y, int64_t B, int64_t HW, bool silu) const;  // y may be x
};

// Layer norm over the last dimension of x[M, C]; `name`.weight, `name`.bias [C].
struct LayerNorm {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int64_t channels = 0;
  float eps = 1e-5f;

  static LayerNorm load(const WeightStore& w, const std::string& name, int64_t channels, float eps);
  void forward(Compute& c, const float* x, float* y, int64_t M) const;  // y may be x
};

// sin/cos timestep features [B, dim] (diffusers get_timestep_embedding with flip_sin_to_cos,
// downscale_freq_shift 0: [cos(t f_i), sin(t f_i)], f_i = exp(-ln(10000) i / (dim/2))).
void timestep_embedding(const double* timesteps, int64_t B, int64_t dim, float* out);

}  // namespace nd::nn
