// Building blocks of the LDM autoencoder (first_stage_model.*), named after the
// checkpoint keys: ResnetBlock (norm1/conv1/norm2/conv2/nin_shortcut), AttnBlock
// (norm, q/k/v/proj_out), Upsample and Downsample. Activations are f32 NCHW buffers.
#pragma once
#include <string>

#include "core/tensor.h"
#include "core/threadpool.h"
#include "cpu/ops.h"
#include "models/weights.h"

namespace nd::vae {

constexpr float kNormEps = 1e-6f;  // LDM Normalize / diffusers AutoencoderKL

struct Conv2d {
  cpu::WeightRef weight;
  const float* bias = nullptr;
  int64_t cout = 0, cin = 0;
  int kernel = 1;
  bool present = false;

  // `name`.weight [cout, cin, k, k] (a 1x1 kernel may also be stored as Linear [cout, cin]) and `name`.bias [cout].
  static Conv2d load(const WeightStore& store, const std::string& name, int64_t cout, int64_t cin, int kernel);
  // Same-size convolution (padding k/2, stride 1): x [B, cin, H, W] -> [B, cout, H, W].
  Buffer operator()(ThreadPool& pool, const Buffer& x) const;
};

struct GroupNorm {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int64_t channels = 0;
  int groups = 32;

  static GroupNorm load(const WeightStore& store, const std::string& name, int64_t channels, int groups);
  // y = group_norm(x) (then SiLU when asked); y may be x.
  void operator()(ThreadPool& pool, const Buffer& x, Buffer& y, bool silu) const;
};

// x + conv2(silu(norm2(conv1(silu(norm1(x)))))), with a 1x1 nin_shortcut on x when channels change.
struct ResnetBlock {
  GroupNorm norm1, norm2;
  Conv2d conv1, conv2, nin_shortcut;

  static ResnetBlock load(const WeightStore& store, const std::string& name, int64_t cin, int64_t cout, int groups);
  Buffer operator()(ThreadPool& pool, const Buffer& x) const;
};

// Single-head self-attention over the H·W positions: x + proj_out(attention(q, k, v)(norm(x))).
struct AttnBlock {
  GroupNorm norm;
  Conv2d q, k, v, proj_out;  // 1x1 kernels, used as Linear over token-major activations

  static AttnBlock load(const WeightStore& store, const std::string& name, int64_t channels, int groups);
  Buffer operator()(ThreadPool& pool, const Buffer& x) const;
};

// Nearest-neighbour ×2, then a 3x3 conv.
struct Upsample {
  Conv2d conv;
  static Upsample load(const WeightStore& store, const std::string& name, int64_t channels);
  Buffer operator()(ThreadPool& pool, const Buffer& x) const;
};

// LDM's asymmetric padding: zero-pad right and bottom by one, then a 3x3 conv with stride 2.
struct Downsample {
  Conv2d conv;
  static Downsample load(const WeightStore& store, const std::string& name, int64_t channels);
  Buffer operator()(ThreadPool& pool, const Buffer& x) const;
};

}  // namespace nd::vae
