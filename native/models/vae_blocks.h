// Building blocks of the LDM autoencoder (first_stage_model.*), named after the
// checkpoint keys: ResnetBlock (norm1/conv1/norm2/conv2/nin_shortcut), AttnBlock
// (norm, q/k/v/proj_out), Upsample and Downsample, built from the nn layers (nn/layers.h: Conv2d, GroupNorm) and
// run through the backend interface with the call's Compute. Activations are f32 NCHW buffers borrowed from the
// call's BufferPool (core/buffer_pool.h); blocks consume their input (reusing its storage where they can).
#pragma once
#include <string>

#include "backend/compute.h"
#include "core/buffer_pool.h"
#include "core/tensor.h"
#include "core/weights.h"
#include "nn/layers.h"

namespace nd::vae {

constexpr float kNormEps = 1e-6f;  // LDM Normalize / diffusers AutoencoderKL

using nn::Conv2d;
using nn::GroupNorm;

// `name` as a same-size convolution (padding k/2, stride 1); a 1x1 kernel may also be stored as Linear [cout, cin].
Conv2d load_conv(const WeightStore& store, const std::string& name, int64_t cout, int64_t cin, int kernel);
GroupNorm load_norm(const WeightStore& store, const std::string& name, int64_t channels, int groups);
// y = conv(x) into a new activation; group_norm(x) (then SiLU when asked) into y, which may be x.
PooledBuffer conv(BufferPool& acts, Compute& c, const Conv2d& conv, const PooledBuffer& x);
void group_norm(Compute& c, const GroupNorm& norm, const PooledBuffer& x, float* y, bool silu);

// x + conv2(silu(norm2(conv1(silu(norm1(x)))))), with a 1x1 nin_shortcut on x when channels change.
struct ResnetBlock {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2, nin_shortcut;

  static ResnetBlock load(const WeightStore& store, const std::string& name, int64_t cin, int64_t cout, int groups);
  PooledBuffer operator()(BufferPool& acts, Compute& c, PooledBuffer x) const;
};

// Single-head self-attention over the H·W positions: x + proj_out(attention(q, k, v)(norm(x))).
struct AttnBlock {
  GroupNorm norm;
  Conv2d q, k, v, proj_out;  // 1x1 kernels, used as Linear over token-major activations

  static AttnBlock load(const WeightStore& store, const std::string& name, int64_t channels, int groups);
  PooledBuffer operator()(BufferPool& acts, Compute& c, PooledBuffer x) const;
};

// Nearest-neighbour ×2, then a 3x3 conv.
struct Upsample {
  Conv2d conv;
  static Upsample load(const WeightStore& store, const std::string& name, int64_t channels);
  PooledBuffer operator()(BufferPool& acts, Compute& c, PooledBuffer x) const;
};

// LDM's asymmetric padding: zero-pad right and bottom by one, then a 3x3 conv with stride 2.
struct Downsample {
  Conv2d conv;
  static Downsample load(const WeightStore& store, const std::string& name, int64_t channels);
  PooledBuffer operator()(BufferPool& acts, Compute& c, PooledBuffer x) const;
};

}  // namespace nd::vae
