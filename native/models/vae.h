// The LDM autoencoder (AutoencoderKL) of Stable Diffusion: decoder (latents -> image),
// a tiled decoder for images too large to decode in one piece, and the encoder
// (image -> mean / log-variance of the latent distribution, for img2img).
// Weight names: first_stage_model.{encoder,decoder,quant_conv,post_quant_conv}.*
#pragma once
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "core/cancel.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "core/weights.h"
#include "models/vae_blocks.h"

namespace nd {

// Mirrors VaeConfig in lib/loading/types.ts.
struct VaeConfig {
  int64_t latent_channels = 4;
  std::vector<int64_t> channels{128, 256, 512, 512};  // per level, encoder order
  int64_t num_res_blocks = 2;
  double scaling_factor = 0.18215;  // applied by the caller (latents / scaling_factor before decode)
  int64_t norm_groups = 32;
};

struct VaeTileOptions {
  int64_t size = 64;     // latent pixels per tile side
  int64_t overlap = 16;  // latent pixels shared by neighbouring tiles, blended with linear ramps
};

struct VaeMoments {
  Buffer mean;    // [B, latent, H/f, W/f]
  Buffer logvar;  // same shape, clamped to [-30, 20] like diffusers' DiagonalGaussianDistribution
};

class Vae {
 public:
  static constexpr int64_t kMaxImageSide = 16384;
  static constexpr int64_t kImageChannels = 3;  // RGB in and out

  // Loads and shape-checks the decoder; the encoder too when its weights are present.
  Vae(std::shared_ptr<const WeightStore> weights, const VaeConfig& config);

  const VaeConfig& config() const { return config_; }
  bool has_encoder() const { return has_encoder_; }
  // Image pixels per latent pixel (8 for four levels).
  int64_t factor() const { return int64_t(1) << (config_.channels.size() - 1); }

  // z [B, latent, h, w] (already divided by the scaling factor) -> raw decoder output [B, 3, f·h, f·w].
  // Every call computes with the process compute pool `pool` and checks `cancel` between blocks (and tiles).
  Buffer decode(ThreadPool& pool, const CancelFlag& cancel, const float* z, int64_t batch, int64_t height,
                int64_t width) const;
  // Same, for large latents: the latent-resolution part (post_quant_conv, conv_in, mid block with its
  // global attention) runs on the whole latent, then the upsampling levels run on overlapping tiles of
  // it that are blended with linear ramps. Their group-norm statistics are per tile, so the result
  // approximates decode(); a latent that fits in one tile decodes exactly.
  Buffer decode_tiled(ThreadPool& pool, const CancelFlag& cancel, const float* z, int64_t batch, int64_t height,
                      int64_t width, const VaeTileOptions& tiles) const;
  // image [B, 3, H, W] in [-1, 1], H and W multiples of factor() -> moments of the latent distribution.
  VaeMoments encode(ThreadPool& pool, const CancelFlag& cancel, const float* image, int64_t batch, int64_t height,
                    int64_t width) const;

 private:
  struct Level {
    std::vector<vae::ResnetBlock> blocks;
    vae::Upsample upsample;      // decoder levels above 0
    vae::Downsample downsample;  // encoder levels below the last
    bool resample = false;
  };
  struct Mid {
    vae::ResnetBlock block_1;
    vae::AttnBlock attn_1;
    vae::ResnetBlock block_2;
  };

  void load_decoder();
  void load_encoder();
  Mid load_mid(const std::string& prefix, int64_t channels) const;
  PooledBuffer run_mid(BufferPool& acts, Compute& c, const Mid& mid, PooledBuffer x) const;
  // decode() = decode_levels(decode_latent_stage(z)): [B, z, h, w] -> [B, C_last, h, w] -> [B, 3, f·h, f·w]
  PooledBuffer decode_latent_stage(BufferPool& acts, Compute& c, const float* z, int64_t batch, int64_t height,
                                   int64_t width) const;
  Buffer decode_levels(BufferPool& acts, Compute& c, PooledBuffer x) const;
  void check_latents(int64_t batch, int64_t height, int64_t width) const;

  std::shared_ptr<const WeightStore> weights_;
  VaeConfig config_;
  const Backend& be_;
  int groups_ = 32;

  vae::Conv2d post_quant_conv_, dec_conv_in_, dec_conv_out_;
  Mid dec_mid_;
  std::vector<Level> dec_up_;  // index = level (up.0 is the last, full-resolution level)
  vae::GroupNorm dec_norm_out_;

  bool has_encoder_ = false;
  vae::Conv2d enc_conv_in_, enc_conv_out_, quant_conv_;
  std::vector<Level> enc_down_;
  Mid enc_mid_;
  vae::GroupNorm enc_norm_out_;
};

}  // namespace nd
