// Our layered multi-scale U-Net (docs/design.md §5.2; training/README.md lists the graph) and its tiny
// CLIP-architecture text encoder, run from a "native-diffusion-layered" model: model.safetensors + config.json.
// Assembled from the same nn blocks as the SD U-Net (ResBlock, SpatialTransformer, Down/Upsample) and the same text
// encoder (models/clip_text), with a vocabulary remap in front. Weight names: model.diffusion_model.* (U-Net),
// cond_stage_model.transformer.text_model.* (text encoder).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/cancel.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "core/weights.h"
#include "models/clip_text.h"
#include "nn/blocks.h"

namespace nd::models {

struct LayeredTextConfig {
  int64_t vocab_size = 0, width = 0, layers = 0, heads = 0, max_positions = 0, mlp_ratio = 4;
};

struct LayeredConfig {
  std::vector<int64_t> scales;                      // image sides at native size, lowest first
  std::vector<int64_t> scale_channels;              // per scale
  int64_t in_channels = 3, inner1 = 0, inner2 = 0;  // the levels at s0/2 (attention) and s0/4 (middle)
  int64_t head_dim = 0, groups = 0, time_embed_dim = 0, time_freq_dim = 0, context_dim = 0;
  LayeredTextConfig text;
  std::vector<int64_t> vocab;  // CLIP ids of token_embedding rows 1.. (row 0: any other id)
};

// Heads of an attention layer of C channels, as training/model.py counts them: floor(C / head_dim), at
// least 1; each head then has C / heads channels (equal to head_dim when head_dim divides C).
inline int64_t attention_heads(int64_t C, int64_t head_dim) { return C / head_dim > 0 ? C / head_dim : 1; }
inline int64_t attention_head_size(int64_t C, int64_t head_dim) { return C / attention_heads(C, head_dim); }

// Parses and validates config.json text ("format": "native-diffusion-layered").
LayeredConfig parse_layered_config(const std::string& json_text);

class LayeredUNet {
 public:
  LayeredUNet(std::shared_ptr<WeightStore> weights, LayeredConfig config);

  const LayeredConfig& config() const { return cfg_; }

  // CLIP ids [B, n] (n <= max_positions) -> context [B, n, width]: vocabulary remap, causal CLIP transformer,
  // final layer norm.
  // Both calls compute with the process compute pool `pool` and stop between layers once `cancel` is set.
  Buffer encode_text(ThreadPool& pool, const CancelFlag& cancel, const int32_t* ids, int64_t batch, int64_t n) const;

  // zs[i]: [B, C, H_i, W_i] with H_i = H·scales[i]/scales.back(); t: [B] in [0, 1]; context: [B, n_ctx, context_dim];
  // self_scales: 3 softmax scales for the self-attention layers (entropy scaling) or null for 1/sqrt(head_dim).
  // Returns v at every scale, lowest first. With `capture`, the head-averaged self- and cross-attention
  // probabilities of the 3 transformer blocks are appended to it (S-CFG).
  std::vector<Buffer> forward(ThreadPool& pool, const CancelFlag& cancel, const std::vector<const float*>& zs,
                              int64_t batch, int64_t height, int64_t width, const float* t, const float* context,
                              int64_t n_ctx, const float* self_scales,
                              std::vector<nn::CapturedAttention>* capture = nullptr) const;

 private:
  struct OutHead {  // out.i: GroupNorm + SiLU, 3x3 conv to in_channels
    nn::GroupNorm norm;
    nn::Conv2d conv;
  };

  std::shared_ptr<WeightStore> w_;
  LayeredConfig cfg_;
  const Backend& be_;
  std::unique_ptr<ClipTextEncoder> text_;
  nn::Linear time_embed_0_, time_embed_2_;                  // time_embed.0, time_embed.2
  std::vector<nn::Conv2d> conv_in_;                         // conv_in.i, one per scale
  nn::ResBlock in0_, in1_, mid0_, mid2_;                    // input_blocks.{0,1}.0, middle_block.{0,2}
  nn::SpatialTransformer in1_attn_, mid_attn_, out0_attn_;  // input_blocks.1.1, middle_block.1, output_blocks.0.1
  nn::Downsample down0_, down1_;                            // down.0, down.1
  std::vector<nn::Upsample> up_;                            // up.0 .. up.S
  std::vector<nn::ResBlock> out_res_;                       // output_blocks.0.0 .. output_blocks.S.0
  std::vector<OutHead> out_;                                // out.0 .. out.{S-1}
};

}  // namespace nd::models
