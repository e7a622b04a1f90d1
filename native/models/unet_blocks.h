// Building blocks of the Stable Diffusion U-Net (LDM openaimodel.py), named after the
// checkpoint keys: ResBlock (`in_layers`, `emb_layers`, `out_layers`, `skip_connection`),
// SpatialTransformer (`norm`, `proj_in`, `transformer_blocks.N.*`, `proj_out`),
// Downsample (`op`) and Upsample (`conv`). Activations are f32 NCHW; temporaries come from
// the forward's arena and are released (reset to a mark) before each block returns.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/threadpool.h"
#include "cpu/ops.h"
#include "models/weights.h"

namespace nd::unet {

// An NCHW activation view.
struct Act {
  float* data = nullptr;
  int64_t B = 0, C = 0, H = 0, W = 0;
  int64_t numel() const { return B * C * H * W; }
};

struct Ctx {
  ThreadPool& pool;
  Arena& arena;
};

// Head-averaged attention probabilities of one attention layer (S-CFG).
struct CapturedAttention {
  std::string name;  // checkpoint prefix, e.g. "model.diffusion_model.middle_block.1.transformer_blocks.0.attn1"
  bool cross = false;
  int64_t h = 0, w = 0, nk = 0;
  std::vector<float> probs;  // [B, h*w, nk]
};

// Per-call settings of one SpatialTransformer.
struct AttentionCall {
  float self_scale_factor = 1.f;  // multiplies 1/sqrt(d) in self-attention (entropy scaling); 1 = stock
  bool use_factor = false;        // false: exactly 1/sqrt(d)
  std::vector<CapturedAttention>* capture = nullptr;  // non-null: record probabilities of every layer here
};

// A weight tensor used zero-copy in its file dtype.
struct Weight {
  cpu::WeightRef ref;
  const float* bias = nullptr;  // widened f32 copy owned by the store, or null
};

// sin/cos timestep features [B, dim] (diffusers get_timestep_embedding with flip_sin_to_cos,
// downscale_freq_shift 0: [cos(t f_i), sin(t f_i)], f_i = exp(-ln(10000) i / (dim/2))).
void timestep_embedding(const double* timesteps, int64_t B, int64_t dim, float* out);

class ResBlock {
 public:
  ResBlock() = default;
  ResBlock(const WeightStore& w, const std::string& prefix, int64_t in_ch, int64_t out_ch, int64_t emb_dim,
           int64_t groups);
  // x [B, in_ch, H, W], emb_act = SiLU(time embedding) [B, emb_dim] -> out [B, out_ch, H, W] (out != x)
  void forward(Ctx& ctx, const Act& x, const float* emb_act, float* out) const;
  int64_t out_channels() const { return out_ch_; }

 private:
  int64_t in_ch_ = 0, out_ch_ = 0, emb_dim_ = 0, groups_ = 32;
  const float *norm1_g_ = nullptr, *norm1_b_ = nullptr, *norm2_g_ = nullptr, *norm2_b_ = nullptr;
  Weight conv1_, emb_proj_, conv2_, skip_;
  bool has_skip_ = false;
};

class SpatialTransformer {
 public:
  SpatialTransformer() = default;
  SpatialTransformer(const WeightStore& w, const std::string& prefix, int64_t channels, int64_t heads, int64_t depth,
                     int64_t context_dim, bool linear_projection, int64_t groups);
  // x [B, C, H, W] updated in place; context [B, T, context_dim].
  void forward(Ctx& ctx, const Act& x, const float* context, int64_t T, const AttentionCall& call) const;

 private:
  struct Block {
    const float *norm1_g, *norm1_b, *norm2_g, *norm2_b, *norm3_g, *norm3_b;
    Weight q1, k1, v1, out1, q2, k2, v2, out2, ff_in, ff_out;
  };
  std::string prefix_;
  int64_t channels_ = 0, heads_ = 1, context_dim_ = 0, groups_ = 32;
  const float *norm_g_ = nullptr, *norm_b_ = nullptr;
  Weight proj_in_, proj_out_;
  std::vector<Block> blocks_;
};

// 3x3 convolution with stride 2, padding 1: [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)].
class Downsample {
 public:
  Downsample() = default;
  Downsample(const WeightStore& w, const std::string& prefix, int64_t channels);
  void forward(Ctx& ctx, const Act& x, float* out) const;

 private:
  int64_t channels_ = 0;
  Weight op_;
};

// Nearest-neighbour resize to (Ho, Wo) (the matching skip's size; 2x in the usual case), then 3x3 conv.
class Upsample {
 public:
  Upsample() = default;
  Upsample(const WeightStore& w, const std::string& prefix, int64_t channels);
  void forward(Ctx& ctx, const Act& x, int64_t Ho, int64_t Wo, float* out) const;

 private:
  int64_t channels_ = 0;
  Weight conv_;
};

// Loads `name.weight` (shape checked) and `name.bias` (length `bias_len`, 0 = none).
Weight load_weight(const WeightStore& w, const std::string& name, const Shape& shape, int64_t bias_len);
// `name.weight` and `name.bias` of a norm layer, both [channels], as widened f32.
void load_norm(const WeightStore& w, const std::string& name, int64_t channels, const float** gamma,
               const float** beta);

}  // namespace nd::unet
