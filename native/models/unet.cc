#include "models/unet.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/arena.h"
#include "nn/profile.h"

namespace nd {

using nn::Act;
using nn::CapturedAttention;

namespace {

const std::string kPrefix = "model.diffusion_model.";

[[noreturn]] void bad_config(const std::string& what, const std::string& name, const std::string& got) {
  fail_expected(code::kInvalidArgument, what, "unet config " + name, got);
}

int64_t ceil_half(int64_t n) { return (n + 1) / 2; }  // 3x3 stride-2 pad-1 conv output size

// Spatial size of level l (l stride-2 downsamples of n).
int64_t level_size(int64_t n, int l) {
  for (int i = 0; i < l; ++i) n = ceil_half(n);
  return n;
}

}  // namespace

void UNetConfig::validate() const {
  const size_t levels = channel_mult.size();
  if (levels < 1 || levels > 8) bad_config("1 to 8 levels", "channelMult", std::to_string(levels) + " entries");
  if (in_channels < 1 || in_channels > 64) bad_config("1..64", "inChannels", std::to_string(in_channels));
  if (out_channels < 1 || out_channels > 64) bad_config("1..64", "outChannels", std::to_string(out_channels));
  if (norm_groups < 1) bad_config("a positive integer", "normGroups", std::to_string(norm_groups));
  if (model_channels < 2 || model_channels % 2 || model_channels % norm_groups || model_channels > 4096)
    bad_config("an even multiple of normGroups up to 4096", "modelChannels", std::to_string(model_channels));
  for (size_t l = 0; l < levels; ++l)
    if (channel_mult[l] < 1 || channel_mult[l] > 64)
      bad_config("1..64", "channelMult[" + std::to_string(l) + "]", std::to_string(channel_mult[l]));
  if (num_res_blocks < 1 || num_res_blocks > 16) bad_config("1..16", "numResBlocks", std::to_string(num_res_blocks));
  if (attention_levels.size() != levels)
    bad_config(std::to_string(levels) + " entries", "attentionLevels", std::to_string(attention_levels.size()));
  if (num_heads.size() != levels)
    bad_config(std::to_string(levels) + " entries", "numHeads", std::to_string(num_heads.size()));
  for (size_t l = 0; l < levels; ++l) {
    const int64_t ch = channel_mult[l] * model_channels;
    if (attention_levels[l] && (num_heads[l] < 1 || ch % num_heads[l]))
      bad_config("a head count dividing " + std::to_string(ch), "numHeads[" + std::to_string(l) + "]",
                 std::to_string(num_heads[l]));
  }
  const int64_t mid_ch = channel_mult.back() * model_channels;
  if (mid_heads < 1 || mid_ch % mid_heads)
    bad_config("a head count dividing " + std::to_string(mid_ch), "midHeads", std::to_string(mid_heads));
  if (transformer_depth.size() != levels)
    bad_config(std::to_string(levels) + " entries", "transformerDepth", std::to_string(transformer_depth.size()));
  for (size_t l = 0; l < levels; ++l)
    if (transformer_depth[l] < (attention_levels[l] ? 1 : 0) || transformer_depth[l] > 16)
      bad_config(attention_levels[l] ? "1..16" : "0..16", "transformerDepth[" + std::to_string(l) + "]",
                 std::to_string(transformer_depth[l]));
  if (mid_transformer_depth < 1 || mid_transformer_depth > 16)
    bad_config("1..16", "transformerDepthMiddle", std::to_string(mid_transformer_depth));
  if (context_dim < 1 || context_dim > 16384) bad_config("1..16384", "contextDim", std::to_string(context_dim));
  if (adm_in_channels < 0 || adm_in_channels > 65536)
    bad_config("0..65536", "admInChannels", std::to_string(adm_in_channels));
}

nn::TransformerConfig UNet::transformer(int64_t channels, int64_t heads, int64_t depth) const {
  nn::TransformerConfig t;
  t.channels = channels;
  t.heads = heads;
  t.depth = depth;
  t.context_dim = config_.context_dim;
  t.groups = config_.norm_groups;
  t.linear_projection = config_.use_linear_projection;
  return t;
}

UNet::UNet(std::shared_ptr<const WeightStore> weights, const UNetConfig& config)
    : weights_(std::move(weights)), config_(config), be_(default_backend()) {
  config_.validate();
  const WeightStore& w = *weights_;
  const UNetConfig& c = config_;
  const int levels = (int)c.channel_mult.size();
  const int64_t mc = c.model_channels, groups = c.norm_groups;
  time_embed_dim_ = 4 * mc;
  const int64_t TE = time_embed_dim_;
  time_embed_0_ = nn::Linear::load(w, kPrefix + "time_embed.0", TE, mc, true);
  time_embed_2_ = nn::Linear::load(w, kPrefix + "time_embed.2", TE, TE, true);
  if (c.adm_in_channels > 0) {
    label_emb_0_ = nn::Linear::load(w, kPrefix + "label_emb.0.0", TE, c.adm_in_channels, true);
    label_emb_2_ = nn::Linear::load(w, kPrefix + "label_emb.0.2", TE, TE, true);
  }
  conv_in_ = nn::Conv2d::load(w, kPrefix + "input_blocks.0.0", mc, c.in_channels, 3);
  const auto res = [&](int64_t in_ch, int64_t out_ch) { return nn::ResBlockConfig{in_ch, out_ch, TE, groups}; };

  std::vector<int64_t> skip_channels{mc};
  int64_t ch = mc;
  int index = 1;
  for (int l = 0; l < levels; ++l) {
    for (int64_t r = 0; r < c.num_res_blocks; ++r, ++index) {
      const std::string p = kPrefix + "input_blocks." + std::to_string(index);
      InputBlock b;
      b.level = l;
      const int64_t out = c.channel_mult[l] * mc;
      b.res = nn::ResBlock(w, p + ".0", res(ch, out));
      ch = out;
      b.has_attn = c.attention_levels[l] && c.transformer_depth[l] > 0;
      if (b.has_attn)
        b.attn = nn::SpatialTransformer(w, p + ".1", transformer(ch, c.num_heads[l], c.transformer_depth[l]));
      input_blocks_.push_back(std::move(b));
      skip_channels.push_back(ch);
    }
    if (l + 1 < levels) {
      InputBlock b;
      b.level = l;
      b.is_down = true;
      b.down = nn::Downsample(w, kPrefix + "input_blocks." + std::to_string(index) + ".0", ch);
      input_blocks_.push_back(std::move(b));
      skip_channels.push_back(ch);
      ++index;
    }
  }

  mid_res1_ = nn::ResBlock(w, kPrefix + "middle_block.0", res(ch, ch));
  mid_attn_ =
      nn::SpatialTransformer(w, kPrefix + "middle_block.1", transformer(ch, c.mid_heads, c.mid_transformer_depth));
  mid_res2_ = nn::ResBlock(w, kPrefix + "middle_block.2", res(ch, ch));

  index = 0;
  for (int l = levels - 1; l >= 0; --l) {
    for (int64_t r = 0; r <= c.num_res_blocks; ++r, ++index) {
      const std::string p = kPrefix + "output_blocks." + std::to_string(index);
      OutputBlock b;
      b.level = l;
      const int64_t skip = skip_channels.back(), out = c.channel_mult[l] * mc;
      skip_channels.pop_back();
      b.res = nn::ResBlock(w, p + ".0", res(ch + skip, out));
      ch = out;
      int sub = 1;
      b.has_attn = c.attention_levels[l] && c.transformer_depth[l] > 0;
      if (b.has_attn)
        b.attn = nn::SpatialTransformer(w, p + "." + std::to_string(sub++),
                                        transformer(ch, c.num_heads[l], c.transformer_depth[l]));
      b.has_up = l > 0 && r == c.num_res_blocks;
      if (b.has_up) b.up = nn::Upsample(w, p + "." + std::to_string(sub), ch);
      output_blocks_.push_back(std::move(b));
    }
  }
  out_norm_ = nn::GroupNorm::load(w, kPrefix + "out.0", ch, (int)groups, 1e-5f);
  conv_out_ = nn::Conv2d::load(w, kPrefix + "out.2", c.out_channels, ch, 3);
}

void UNet::check_inputs(const UNetInputs& in) const {
  const auto s = [](int64_t v) { return std::to_string(v); };
  if (in.B < 1 || in.B > 4096) fail_expected(code::kInvalidArgument, "a batch size in 1..4096", "sample", s(in.B));
  if (in.C != config_.in_channels)
    fail_expected(code::kInvalidArgument, s(config_.in_channels) + " channels", "sample", s(in.C));
  for (auto [v, name] : {std::pair{in.H, "the sample height"}, std::pair{in.W, "the sample width"}})
    if (v < 8 || v % 8 || v > 8192) fail_expected(code::kInvalidArgument, "a multiple of 8 in 8..8192", name, s(v));
  if (in.num_timesteps != 1 && in.num_timesteps != in.B)
    fail_expected(code::kInvalidArgument, in.B == 1 ? "1 value" : "1 or " + s(in.B) + " values (one per batch element)",
                  "timesteps", s(in.num_timesteps) + " values");
  for (int64_t i = 0; i < in.num_timesteps; ++i)
    if (!std::isfinite(in.timesteps[i]))
      fail_expected(code::kInvalidArgument, "a finite number", "timesteps[" + s(i) + "]",
                    std::to_string(in.timesteps[i]));
  if (in.context_batch != in.B)
    fail_expected(code::kInvalidArgument, "batch " + s(in.B) + " (the sample's)", "context", s(in.context_batch));
  if (in.T < 1 || in.T > 65536) fail_expected(code::kInvalidArgument, "1..65536 tokens", "context", s(in.T));
  if (in.D != config_.context_dim)
    fail_expected(code::kInvalidArgument, "width " + s(config_.context_dim), "context", s(in.D));
  if (config_.adm_in_channels > 0 && (!in.added || in.added_dim != in.B * config_.adm_in_channels))
    fail_expected(code::kInvalidArgument, s(in.B * config_.adm_in_channels) + " values ([B, admInChannels])",
                  "the added conditioning", s(in.added ? in.added_dim : 0) + " values");
  if (!in.sample || !in.context || !in.timesteps)
    fail(code::kInvalidArgument, "Expected sample, timesteps and context data but received a null pointer");
}

nn::AttentionCall UNet::attention_call(int level, int64_t h, int64_t w, const UNetForwardOptions& opt,
                                       std::vector<CapturedAttention>* captured, bool middle) const {
  nn::AttentionCall call;
  if (opt.native_h > 0 && opt.native_w > 0) {
    const double n = (double)std::max<int64_t>(h * w, 2);
    const double t = (double)std::max<int64_t>(level_size(opt.native_h, level) * level_size(opt.native_w, level), 2);
    call.use_factor = true;
    call.self_scale_factor = (float)std::sqrt(std::log(n) / std::log(t));
  }
  const int factor = 1 << level;  // spatial reduction of this level
  if (captured && opt.capture_attention && (middle || factor == 4 || factor == 8)) call.capture = captured;
  return call;
}

void UNet::forward(ThreadPool& pool, const CancelFlag& cancel, const UNetInputs& in, const UNetForwardOptions& opt,
                   float* out, std::vector<CapturedAttention>* captured) {
  check_inputs(in);
  std::lock_guard<std::mutex> lock(mutex_);
  prof::Scope forward_scope(prof::Op::Forward);
  const UNetConfig& c = config_;
  const int levels = (int)c.channel_mult.size();
  const int64_t B = in.B, mc = c.model_channels, TE = time_embed_dim_;
  std::vector<int64_t> hs(levels), ws(levels);
  for (int l = 0; l < levels; ++l) hs[l] = level_size(in.H, l), ws[l] = level_size(in.W, l);

  Arena arena;
  Compute ctx{be_, pool, arena, cancel};

  // Timestep embedding -> time_embed MLP [+ label_emb(y)] -> SiLU (the emb_layers.0 of every ResBlock, applied once).
  std::vector<double> ts((size_t)B);
  for (int64_t b = 0; b < B; ++b) ts[b] = in.timesteps[in.num_timesteps == 1 ? 0 : b];
  float* tproj = ctx.alloc((size_t)(B * mc));  // [B, mc]
  nn::timestep_embedding(ts.data(), B, mc, tproj);
  float* temb1 = ctx.alloc((size_t)(B * TE));   // [B, 4 mc]
  time_embed_0_.forward(ctx, tproj, B, temb1);  // time_embed.0
  ND_TIMED(Elementwise, be_.silu(pool, temb1, B * TE));
  float* emb = ctx.alloc((size_t)(B * TE));   // [B, 4 mc]
  time_embed_2_.forward(ctx, temb1, B, emb);  // time_embed.2
  if (c.adm_in_channels > 0) {
    float* y1 = ctx.alloc((size_t)(B * TE));                         // [B, 4 mc]
    label_emb_0_.forward(ctx, in.added, B, y1);                      // label_emb.0.0
    ND_TIMED(Elementwise, be_.silu(pool, y1, B * TE));               // label_emb.0.1
    label_emb_2_.forward(ctx, y1, B, emb, TE, /*accumulate=*/true);  // emb += label_emb.0.2(...)
  }
  ND_TIMED(Elementwise, be_.silu(pool, emb, B * TE));  // SiLU(emb)

  // Up-path ping-pong buffers sized for the largest hidden state they hold.
  int64_t pp = B * c.channel_mult.back() * mc * hs[levels - 1] * ws[levels - 1];  // middle block
  for (int l = 0; l < levels; ++l) {
    const int64_t ch = c.channel_mult[l] * mc;
    pp = std::max(pp, B * ch * hs[l] * ws[l]);
    if (l > 0) pp = std::max(pp, B * ch * hs[l - 1] * ws[l - 1]);  // upsampled
  }
  float* ping[2] = {ctx.alloc((size_t)pp), ctx.alloc((size_t)pp)};

  // Down path: every block output is a skip connection.
  std::vector<Act> skips;
  Act h{ctx.alloc((size_t)(B * mc * in.H * in.W)), B, mc, in.H, in.W};  // [B, mc, H, W]
  conv_in_.forward(ctx, in.sample, B, in.H, in.W, h.data);              // input_blocks.0.0
  skips.push_back(h);
  for (const InputBlock& blk : input_blocks_) {
    ctx.check_cancel();
    if (blk.is_down) {
      Act o{nullptr, B, h.C, ceil_half(h.H), ceil_half(h.W)};  // [B, C, H/2, W/2]
      o.data = ctx.alloc((size_t)o.numel());
      blk.down.forward(ctx, h, o.data);
      h = o;
    } else {
      Act o{nullptr, B, blk.res.out_channels(), h.H, h.W};  // [B, C_l, H_l, W_l]
      o.data = ctx.alloc((size_t)o.numel());
      blk.res.forward(ctx, h, emb, o.data);
      if (blk.has_attn)
        blk.attn.forward(ctx, o, in.context, in.T, attention_call(blk.level, o.H, o.W, opt, captured, false));
      h = o;
    }
    skips.push_back(h);
  }

  // Middle block at the lowest resolution.
  ctx.check_cancel();
  int cur = 0;
  Act m{ping[cur], B, h.C, h.H, h.W};  // [B, C_L, H_L, W_L]
  mid_res1_.forward(ctx, h, emb, m.data);
  mid_attn_.forward(ctx, m, in.context, in.T, attention_call(levels - 1, m.H, m.W, opt, captured, true));
  cur ^= 1;
  h = Act{ping[cur], B, m.C, m.H, m.W};
  mid_res2_.forward(ctx, m, emb, h.data);

  // Up path: concatenate [h, skip] on channels, ResBlock [, SpatialTransformer] [, Upsample to the next skip's size].
  for (const OutputBlock& blk : output_blocks_) {
    ctx.check_cancel();
    const Act skip = skips.back();
    skips.pop_back();
    if (skip.H != h.H || skip.W != h.W)
      fail(code::kInternal, "U-Net skip size mismatch at level " + std::to_string(blk.level));
    const Arena::Mark mark = arena.mark();
    Act cat{ctx.alloc((size_t)(B * (h.C + skip.C) * h.H * h.W)), B, h.C + skip.C, h.H, h.W};  // [B, C+Cs, H, W]
    nn::concat_channels(ctx, h, skip, cat.data);
    cur ^= 1;
    Act o{ping[cur], B, blk.res.out_channels(), h.H, h.W};  // [B, C_l, H_l, W_l]
    blk.res.forward(ctx, cat, emb, o.data);
    arena.reset(mark);
    if (blk.has_attn)
      blk.attn.forward(ctx, o, in.context, in.T, attention_call(blk.level, o.H, o.W, opt, captured, false));
    h = o;
    if (blk.has_up) {
      const Act& next = skips.back();  // the upsampled map must match the skip it is concatenated with
      cur ^= 1;
      Act u{ping[cur], B, h.C, next.H, next.W};  // [B, C_l, H_{l-1}, W_{l-1}]
      blk.up.forward(ctx, h, u.H, u.W, u.data);
      h = u;
    }
  }

  // out: GroupNorm + SiLU, 3x3 conv to out_channels.
  float* hn = ctx.alloc((size_t)h.numel());                // [B, mc, H, W]
  out_norm_.forward(ctx, h.data, hn, B, h.H * h.W, true);  // out.0-1
  conv_out_.forward(ctx, hn, B, h.H, h.W, out);            // out.2: [B, out_channels, H, W]
  last_peak_bytes_ = arena.peak();
}

}  // namespace nd
