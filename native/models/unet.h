// The Stable Diffusion U-Net (LDM UNetModel == diffusers UNet2DConditionModel), assembled from the nn blocks
// and run through the backend interface. One model for SD 1.x / 2.x and, by configuration (per-level transformer
// depth, added conditioning `label_emb`), SDXL. Weight names are the LDM single-file keys under
// `model.diffusion_model.`.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/cancel.h"
#include "core/threadpool.h"
#include "core/weights.h"
#include "nn/blocks.h"

namespace nd {

// Mirrors UNetConfig in lib/loading/types.ts.
struct UNetConfig {
  int64_t in_channels = 4;
  int64_t out_channels = 4;
  int64_t model_channels = 320;
  std::vector<int64_t> channel_mult{1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<bool> attention_levels{true, true, true, false};
  std::vector<int64_t> num_heads{8, 8, 8, 8};  // per level
  int64_t mid_heads = 8;
  std::vector<int64_t> transformer_depth{1, 1, 1, 1};  // per level (SDXL: {0, 2, 10} with attention on 1, 2)
  int64_t mid_transformer_depth = 1;                   // the middle block's (SDXL: 10)
  int64_t context_dim = 768;
  // Added conditioning (SDXL's `label_emb`, diffusers' add_embedding): a vector y [B, adm_in_channels]
  // embedded by label_emb.0.0 (Linear) -> SiLU -> label_emb.0.2 (Linear) and added to the time embedding.
  // 0: none (SD 1.x / 2.x).
  int64_t adm_in_channels = 0;
  bool use_linear_projection = false;
  bool upcast_attention = false;  // attention runs in f32 either way
  int64_t norm_groups = 32;

  // ERR_INVALID_ARGUMENT naming the field when the config is inconsistent.
  void validate() const;
};

struct UNetForwardOptions {
  // Attention-entropy scaling (docs/design.md §5.1): the latent size the model was trained at. When set,
  // each self-attention layer scales 1/sqrt(d) by sqrt(ln N / ln T) (N, T: its token counts at the
  // actual and the native size, clamped >= 2). native_h = 0: stock scale.
  int64_t native_h = 0, native_w = 0;
  // S-CFG (docs/design.md §5.3): record head-averaged probabilities of the self- and cross-attention
  // layers at 1/4 and 1/8 of the latent side and in the middle block.
  bool capture_attention = false;
};

struct UNetInputs {
  const float* sample = nullptr;  // [B, C, H, W], C = in_channels
  int64_t B = 0, C = 0, H = 0, W = 0;
  const double* timesteps = nullptr;  // [B] (or [1], broadcast)
  int64_t num_timesteps = 0;
  const float* context = nullptr;  // [context_batch, T, D], context_batch = B, D = context_dim
  int64_t context_batch = 0, T = 0, D = 0;
  const float* added = nullptr;  // [B, adm_in_channels] when the config has added conditioning
  int64_t added_dim = 0;
};

class UNet {
 public:
  UNet(std::shared_ptr<const WeightStore> weights, const UNetConfig& config);
  const UNetConfig& config() const { return config_; }

  // Checks the inputs' sizes; ERR_INVALID_ARGUMENT "Expected ... but received ...".
  void check_inputs(const UNetInputs& in) const;
  // out: [B, out_channels, H, W], computed with the process compute pool `pool`; `cancel` is checked between
  // blocks (ERR_ABORTED). Calls on one object serialise.
  void forward(ThreadPool& pool, const CancelFlag& cancel, const UNetInputs& in, const UNetForwardOptions& opt,
               float* out, std::vector<nn::CapturedAttention>* captured = nullptr);
  size_t last_peak_activation_bytes() const { return last_peak_bytes_.load(); }

 private:
  struct InputBlock {  // input_blocks.N: ResBlock [+ SpatialTransformer], or a Downsample
    bool is_down = false;
    nn::ResBlock res;
    bool has_attn = false;
    nn::SpatialTransformer attn;
    nn::Downsample down;
    int level = 0;
  };
  struct OutputBlock {  // output_blocks.N: ResBlock [+ SpatialTransformer] [+ Upsample]
    nn::ResBlock res;
    bool has_attn = false;
    nn::SpatialTransformer attn;
    bool has_up = false;
    nn::Upsample up;
    int level = 0;
  };

  nn::AttentionCall attention_call(int level, int64_t h, int64_t w, const UNetForwardOptions& opt,
                                   std::vector<nn::CapturedAttention>* captured, bool middle) const;
  nn::TransformerConfig transformer(int64_t channels, int64_t heads, int64_t depth) const;

  std::shared_ptr<const WeightStore> weights_;
  UNetConfig config_;
  const Backend& be_;
  std::mutex mutex_;
  int64_t time_embed_dim_ = 0;
  nn::Linear time_embed_0_, time_embed_2_;  // time_embed.0, time_embed.2
  nn::Linear label_emb_0_, label_emb_2_;    // label_emb.0.0, label_emb.0.2 (added conditioning)
  nn::Conv2d conv_in_, conv_out_;           // input_blocks.0.0, out.2
  nn::GroupNorm out_norm_;                  // out.0
  std::vector<InputBlock> input_blocks_;    // excluding input_blocks.0 (conv_in)
  nn::ResBlock mid_res1_, mid_res2_;
  nn::SpatialTransformer mid_attn_;
  std::vector<OutputBlock> output_blocks_;
  std::atomic<size_t> last_peak_bytes_{0};
};

}  // namespace nd
