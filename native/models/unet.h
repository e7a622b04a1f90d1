// The Stable Diffusion 1.x / 2.x U-Net (LDM UNetModel == diffusers UNet2DConditionModel) on
// the CPU op set. Weight names are the LDM single-file keys under `model.diffusion_model.`.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/threadpool.h"
#include "models/unet_blocks.h"
#include "models/weights.h"

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
  int64_t transformer_depth = 1;
  int64_t context_dim = 768;
  bool use_linear_projection = false;
  bool upcast_attention = false;  // attention runs in f32 either way
  int64_t norm_groups = 32;

  // ERR_INVALID_ARGUMENT naming the field when the config is inconsistent.
  void validate() const;
};

struct UNetForwardOptions {
  // Attention-entropy scaling (DESIGN 5.1): the latent size the model was trained at. When set,
  // each self-attention layer scales 1/sqrt(d) by sqrt(ln N / ln T) (N, T: its token counts at the
  // actual and the native size, clamped >= 2). native_h = 0: stock scale.
  int64_t native_h = 0, native_w = 0;
  // S-CFG (DESIGN 5.3): record head-averaged probabilities of the self- and cross-attention
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
};

class UNet {
 public:
  UNet(std::shared_ptr<const WeightStore> weights, const UNetConfig& config, int threads);
  const UNetConfig& config() const { return config_; }

  // Checks the inputs' sizes; ERR_INVALID_ARGUMENT "Expected ... but received ...".
  void check_inputs(const UNetInputs& in) const;
  // out: [B, out_channels, H, W]. Calls on one object serialise.
  void forward(const UNetInputs& in, const UNetForwardOptions& opt, float* out,
               std::vector<unet::CapturedAttention>* captured = nullptr);
  size_t last_peak_activation_bytes() const { return last_peak_bytes_.load(); }

 private:
  struct InputBlock {  // input_blocks.N: ResBlock [+ SpatialTransformer], or a Downsample
    bool is_down = false;
    unet::ResBlock res;
    bool has_attn = false;
    unet::SpatialTransformer attn;
    unet::Downsample down;
    int level = 0;
  };
  struct OutputBlock {  // output_blocks.N: ResBlock [+ SpatialTransformer] [+ Upsample]
    unet::ResBlock res;
    bool has_attn = false;
    unet::SpatialTransformer attn;
    bool has_up = false;
    unet::Upsample up;
    int level = 0;
  };

  unet::AttentionCall attention_call(int level, int64_t h, int64_t w, const UNetForwardOptions& opt,
                                     std::vector<unet::CapturedAttention>* captured, bool middle) const;

  std::shared_ptr<const WeightStore> weights_;
  UNetConfig config_;
  ThreadPool pool_;
  std::mutex mutex_;
  int64_t time_embed_dim_ = 0;
  unet::Weight conv_in_, time_embed_0_, time_embed_2_, conv_out_;
  const float *out_norm_g_ = nullptr, *out_norm_b_ = nullptr;
  std::vector<InputBlock> input_blocks_;  // excluding input_blocks.0 (conv_in)
  unet::ResBlock mid_res1_, mid_res2_;
  unet::SpatialTransformer mid_attn_;
  std::vector<OutputBlock> output_blocks_;
  std::atomic<size_t> last_peak_bytes_{0};
};

}  // namespace nd
