// The composite blocks of the LDM U-Nets (openaimodel.py / diffusers UNet2DConditionModel), named after the
// checkpoint keys: ResBlock (`in_layers`, `emb_layers`, `out_layers`, `skip_connection`), SpatialTransformer
// (`norm`, `proj_in`, `transformer_blocks.N.{norm1,attn1,norm2,attn2,norm3,ff}`, `proj_out`) with its attention
// (self and cross; entropy scale; optional probability capture for S-CFG) and GEGLU feed-forward,
// Downsample (`op`) and Upsample (`conv`). Built from nn/layers.h; activations are f32 NCHW views, temporaries
// come from the call's arena and are released (reset to a mark) before each block returns.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace nd::nn {

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
  float self_scale = 0.f;         // > 0: the self-attention softmax scale itself (the layered model's per-layer scales)
  std::vector<CapturedAttention>* capture = nullptr;  // non-null: record probabilities of every layer here
};

struct ResBlockConfig {
  int64_t in_ch = 0, out_ch = 0, emb_dim = 0, groups = 32;
};

class ResBlock {
 public:
  ResBlock() = default;
  ResBlock(const WeightStore& w, const std::string& prefix, const ResBlockConfig& config);
  // x [B, in_ch, H, W], emb_act = SiLU(time embedding) [B, emb_dim] -> out [B, out_ch, H, W] (out != x)
  void forward(Compute& c, const Act& x, const float* emb_act, float* out) const;
  int64_t out_channels() const { return cfg_.out_ch; }

 private:
  ResBlockConfig cfg_;
  GroupNorm in_norm_, out_norm_;  // in_layers.0, out_layers.0
  Conv2d in_conv_, out_conv_;     // in_layers.2, out_layers.3
  Linear emb_proj_;               // emb_layers.1
  Conv2d skip_;                   // skip_connection (when in_ch != out_ch)
};

struct TransformerConfig {
  int64_t channels = 0, heads = 1, depth = 1, context_dim = 0, groups = 32;
  bool linear_projection = false;  // SD2: proj_in/proj_out are Linear [C, C]; SD1: 1x1 conv [C, C, 1, 1]
};

class SpatialTransformer {
 public:
  SpatialTransformer() = default;
  SpatialTransformer(const WeightStore& w, const std::string& prefix, const TransformerConfig& config);
  // x [B, C, H, W] updated in place; context [B, T, context_dim].
  void forward(Compute& c, const Act& x, const float* context, int64_t T, const AttentionCall& call) const;

 private:
  struct Block {  // transformer_blocks.N
    LayerNorm norm1, norm2, norm3;
    Linear q1, k1, v1, out1;  // attn1.to_q/k/v (no bias), attn1.to_out.0
    Linear q2, k2, v2, out2;  // attn2 (k, v from the context)
    Linear ff_in, ff_out;     // ff.net.0.proj, ff.net.2
  };
  std::string prefix_;
  TransformerConfig cfg_;
  GroupNorm norm_;
  Linear proj_in_, proj_out_;
  std::vector<Block> blocks_;
};

// 3x3 convolution with stride 2, padding 1: [B, C, H, W] -> [B, C, ceil(H/2), ceil(W/2)].
class Downsample {
 public:
  Downsample() = default;
  Downsample(const WeightStore& w, const std::string& prefix, int64_t channels);
  void forward(Compute& c, const Act& x, float* out) const;

 private:
  Conv2d op_;
};

// Nearest-neighbour resize to (Ho, Wo) (the matching skip's size; 2x in the usual case), then 3x3 conv
// (`conv`: channels -> out_channels; the same count in the SD U-Net).
class Upsample {
 public:
  Upsample() = default;
  Upsample(const WeightStore& w, const std::string& prefix, int64_t channels, int64_t out_channels = 0);
  void forward(Compute& c, const Act& x, int64_t Ho, int64_t Wo, float* out) const;

 private:
  Conv2d conv_;
};

// out [B, a.C + b.C, H, W] = the channels of a, then those of b (the U-Nets' skip concatenation).
void concat_channels(Compute& c, const Act& a, const Act& b, float* out);

}  // namespace nd::nn
