#include "models/vae.h"

#include <algorithm>
#include <cstring>

#include "nn/profile.h"

namespace nd {
namespace {

const std::string kPrefix = "first_stage_model.";

void check_config(const VaeConfig& c) {
  if (c.channels.empty() || c.channels.size() > 8)
    fail_expected(code::kInvalidArgument, "1 to 8 levels", "config.channels",
                  std::to_string(c.channels.size()) + " levels");
  for (size_t i = 0; i < c.channels.size(); ++i)
    if (c.channels[i] <= 0 || c.channels[i] > 65536)
      fail_expected(code::kInvalidArgument, "a positive channel count", "config.channels[" + std::to_string(i) + "]",
                    std::to_string(c.channels[i]));
  if (c.latent_channels <= 0 || c.latent_channels > 1024)
    fail_expected(code::kInvalidArgument, "a positive integer", "config.latentChannels",
                  std::to_string(c.latent_channels));
  if (c.num_res_blocks <= 0 || c.num_res_blocks > 64)
    fail_expected(code::kInvalidArgument, "a positive integer", "config.numResBlocks",
                  std::to_string(c.num_res_blocks));
  if (c.norm_groups <= 0 || c.norm_groups > 65536)
    fail_expected(code::kInvalidArgument, "a positive integer", "config.normGroups", std::to_string(c.norm_groups));
}

}  // namespace

Vae::Vae(std::shared_ptr<const WeightStore> weights, const VaeConfig& config)
    : weights_(std::move(weights)), config_(config), be_(default_backend()) {
  if (!weights_) fail(code::kInvalidArgument, "VAE created without weights");
  check_config(config_);
  groups_ = (int)config_.norm_groups;
  load_decoder();
  has_encoder_ = weights_->has(kPrefix + "encoder.conv_in.weight");
  if (has_encoder_) load_encoder();
}

Vae::Mid Vae::load_mid(const std::string& prefix, int64_t channels) const {
  const WeightStore& s = *weights_;
  return Mid{vae::ResnetBlock::load(s, prefix + "mid.block_1", channels, channels, groups_),
             vae::AttnBlock::load(s, prefix + "mid.attn_1", channels, groups_),
             vae::ResnetBlock::load(s, prefix + "mid.block_2", channels, channels, groups_)};
}

// LDM Decoder: conv_in, mid, then levels from the deepest (up.{L-1}) to up.0, each with
// num_res_blocks + 1 ResnetBlocks and (above level 0) an Upsample; norm_out + SiLU, conv_out.
void Vae::load_decoder() {
  const WeightStore& s = *weights_;
  const std::string p = kPrefix + "decoder.";
  const auto& ch = config_.channels;
  const int64_t levels = (int64_t)ch.size(), z = config_.latent_channels;
  post_quant_conv_ = vae::load_conv(s, kPrefix + "post_quant_conv", z, z, 1);
  int64_t block_in = ch.back();
  dec_conv_in_ = vae::load_conv(s, p + "conv_in", block_in, z, 3);
  dec_mid_ = load_mid(p, block_in);
  dec_up_.resize((size_t)levels);
  for (int64_t i = levels - 1; i >= 0; --i) {
    Level& level = dec_up_[(size_t)i];
    const std::string lp = p + "up." + std::to_string(i) + ".";
    for (int64_t j = 0; j <= config_.num_res_blocks; ++j) {
      level.blocks.push_back(
          vae::ResnetBlock::load(s, lp + "block." + std::to_string(j), block_in, ch[(size_t)i], groups_));
      block_in = ch[(size_t)i];
    }
    if (i != 0) {
      level.upsample = vae::Upsample::load(s, lp + "upsample", block_in);
      level.resample = true;
    }
  }
  dec_norm_out_ = vae::load_norm(s, p + "norm_out", block_in, groups_);
  dec_conv_out_ = vae::load_conv(s, p + "conv_out", kImageChannels, block_in, 3);
}

// LDM Encoder: conv_in, levels up.0 .. up.{L-1} with num_res_blocks ResnetBlocks and (below the
// last) a Downsample, mid, norm_out + SiLU, conv_out to 2·latent channels (mean | logvar); quant_conv.
void Vae::load_encoder() {
  const WeightStore& s = *weights_;
  const std::string p = kPrefix + "encoder.";
  const auto& ch = config_.channels;
  const int64_t levels = (int64_t)ch.size(), z = config_.latent_channels;
  enc_conv_in_ = vae::load_conv(s, p + "conv_in", ch[0], kImageChannels, 3);
  int64_t block_in = ch[0];
  enc_down_.resize((size_t)levels);
  for (int64_t i = 0; i < levels; ++i) {
    Level& level = enc_down_[(size_t)i];
    const std::string lp = p + "down." + std::to_string(i) + ".";
    for (int64_t j = 0; j < config_.num_res_blocks; ++j) {
      level.blocks.push_back(
          vae::ResnetBlock::load(s, lp + "block." + std::to_string(j), block_in, ch[(size_t)i], groups_));
      block_in = ch[(size_t)i];
    }
    if (i != levels - 1) {
      level.downsample = vae::Downsample::load(s, lp + "downsample", block_in);
      level.resample = true;
    }
  }
  enc_mid_ = load_mid(p, block_in);
  enc_norm_out_ = vae::load_norm(s, p + "norm_out", block_in, groups_);
  enc_conv_out_ = vae::load_conv(s, p + "conv_out", 2 * z, block_in, 3);
  quant_conv_ = vae::load_conv(s, kPrefix + "quant_conv", 2 * z, 2 * z, 1);
}

PooledBuffer Vae::run_mid(BufferPool& acts, Compute& c, const Mid& mid, PooledBuffer x) const {
  c.check_cancel();
  x = mid.block_1(acts, c, std::move(x));  // [B, C, h, w]
  x = mid.attn_1(acts, c, std::move(x));   // [B, C, h, w]
  c.check_cancel();
  return mid.block_2(acts, c, std::move(x));
}

void Vae::check_latents(int64_t batch, int64_t height, int64_t width) const {
  const int64_t max_side = kMaxImageSide / factor();
  if (batch < 1 || batch > 1024)
    fail_expected(code::kInvalidArgument, "a batch in [1, 1024]", "latents", std::to_string(batch));
  if (height < 1 || height > max_side || width < 1 || width > max_side)
    fail_expected(code::kInvalidArgument, "a latent height and width in [1, " + std::to_string(max_side) + "]",
                  "latents", std::to_string(height) + "x" + std::to_string(width));
}

PooledBuffer Vae::decode_latent_stage(BufferPool& acts, Compute& c, const float* z, int64_t batch, int64_t height,
                                      int64_t width) const {
  PooledBuffer x(acts, {batch, config_.latent_channels, height, width});
  std::memcpy(x.data(), z, (size_t)x.numel() * sizeof(float));
  x = vae::conv(acts, c, post_quant_conv_, x);  // [B, z, h, w]
  x = vae::conv(acts, c, dec_conv_in_, x);      // [B, C_last, h, w]
  return run_mid(acts, c, dec_mid_, std::move(x));
}

Buffer Vae::decode_levels(BufferPool& acts, Compute& c, PooledBuffer x) const {
  for (size_t i = dec_up_.size(); i-- > 0;) {
    const Level& level = dec_up_[i];
    for (const vae::ResnetBlock& block : level.blocks) {
      c.check_cancel();
      x = block(acts, c, std::move(x));  // [B, C_i, h·2^(L-1-i), ...]
    }
    if (level.resample) x = level.upsample(acts, c, std::move(x));  // resolution ×2
  }
  c.check_cancel();
  vae::group_norm(c, dec_norm_out_, x, x.data(), /*silu=*/true);  // [B, C_0, f·h, f·w]
  Buffer out({x.dim(0), kImageChannels, x.dim(2), x.dim(3)});
  dec_conv_out_.forward(c, x.data(), x.dim(0), x.dim(2), x.dim(3), out.data());  // [B, 3, f·h, f·w]
  return out;
}

Buffer Vae::decode(ThreadPool& pool, const CancelFlag& cancel, const float* z, int64_t batch, int64_t height,
                   int64_t width) const {
  check_latents(batch, height, width);
  prof::Scope forward_scope(prof::Op::Forward);
  BufferPool acts;
  Arena arena;  // the BufferPool holds the VAE's activations; the arena stays empty
  Compute c{be_, pool, arena, cancel};
  return decode_levels(acts, c, decode_latent_stage(acts, c, z, batch, height, width));
}

VaeMoments Vae::encode(ThreadPool& pool, const CancelFlag& cancel, const float* image, int64_t batch, int64_t height,
                       int64_t width) const {
  if (!has_encoder_) fail(code::kUnsupported, "This VAE has no encoder weights (first_stage_model.encoder.*)");
  const int64_t f = factor();
  if (batch < 1 || batch > 1024)
    fail_expected(code::kInvalidArgument, "a batch in [1, 1024]", "image", std::to_string(batch));
  if (height < f || width < f || height % f || width % f || height > kMaxImageSide || width > kMaxImageSide)
    fail_expected(code::kInvalidArgument,
                  "a height and width that are multiples of " + std::to_string(f) + " in [" + std::to_string(f) + ", " +
                      std::to_string(kMaxImageSide) + "]",
                  "image", std::to_string(height) + "x" + std::to_string(width));
  BufferPool acts;
  Arena arena;  // the BufferPool holds the VAE's activations; the arena stays empty
  Compute c{be_, pool, arena, cancel};
  PooledBuffer x(acts, {batch, kImageChannels, height, width});
  std::memcpy(x.data(), image, (size_t)x.numel() * sizeof(float));
  x = vae::conv(acts, c, enc_conv_in_, x);  // [B, C_0, H, W]
  for (const Level& level : enc_down_) {
    for (const vae::ResnetBlock& block : level.blocks) {
      c.check_cancel();
      x = block(acts, c, std::move(x));  // [B, C_i, ...]
    }
    if (level.resample) x = level.downsample(acts, c, std::move(x));  // resolution / 2
  }
  x = run_mid(acts, c, enc_mid_, std::move(x));  // [B, C_last, H/f, W/f]
  vae::group_norm(c, enc_norm_out_, x, x.data(), /*silu=*/true);
  x = vae::conv(acts, c, enc_conv_out_, x);  // [B, 2z, H/f, W/f]
  x = vae::conv(acts, c, quant_conv_, x);    // [B, 2z, H/f, W/f] = mean | logvar
  const int64_t z = config_.latent_channels, hw = (height / f) * (width / f);
  VaeMoments m{Buffer({batch, z, height / f, width / f}), Buffer({batch, z, height / f, width / f})};
  for (int64_t b = 0; b < batch; ++b) {
    const float* src = x.data() + b * 2 * z * hw;
    std::memcpy(m.mean.data() + b * z * hw, src, (size_t)(z * hw) * sizeof(float));
    float* lv = m.logvar.data() + b * z * hw;
    for (int64_t i = 0; i < z * hw; ++i) lv[i] = std::clamp(src[z * hw + i], -30.f, 20.f);
  }
  return m;
}

}  // namespace nd
