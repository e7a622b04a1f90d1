#include "models/unet_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include "models/profile.h"

namespace nd::unet {

Weight load_weight(const WeightStore& w, const std::string& name, const Shape& shape, int64_t bias_len) {
  const Tensor& t = w.get(name + ".weight", shape);
  if (t.shape != shape)
    fail(code::kShapeMismatch, "Expected shape " + shape_str(shape) + " for weight \"" + name +
                                   ".weight\" but received " + shape_str(t.shape));
  Weight out;
  out.ref = {t.data, t.dtype};
  if (bias_len > 0) {
    w.get(name + ".bias", {bias_len});
    const Tensor& b = w.get(name + ".bias");
    if (b.shape != Shape{bias_len})
      fail(code::kShapeMismatch, "Expected shape " + shape_str({bias_len}) + " for weight \"" + name +
                                     ".bias\" but received " + shape_str(b.shape));
    out.bias = w.f32(name + ".bias").data();
  }
  return out;
}

void load_norm(const WeightStore& w, const std::string& name, int64_t channels, const float** gamma,
               const float** beta) {
  for (const char* part : {".weight", ".bias"}) {
    const Tensor& t = w.get(name + part, {channels});
    if (t.shape != Shape{channels})
      fail(code::kShapeMismatch, "Expected shape " + shape_str({channels}) + " for weight \"" + name + part +
                                     "\" but received " + shape_str(t.shape));
  }
  *gamma = w.f32(name + ".weight").data();
  *beta = w.f32(name + ".bias").data();
}

void timestep_embedding(const double* timesteps, int64_t B, int64_t dim, float* out) {
  // Mirrors diffusers' float32 arithmetic (exponent, frequency and product rounded to f32) so
  // that large timesteps (t * f up to 1000 rad) keep their phase.
  const int64_t half = dim / 2;
  const float log_period = (float)-std::log(10000.0);
  for (int64_t b = 0; b < B; ++b) {
    const float t = (float)timesteps[b];
    float* row = out + b * dim;  // [dim]
    for (int64_t i = 0; i < half; ++i) {
      const float exponent = ((float)i * log_period) / (float)half;
      const float freq = (float)std::exp((double)exponent);
      const float arg = t * freq;
      row[i] = (float)std::cos((double)arg);         // flip_sin_to_cos: cos first
      row[half + i] = (float)std::sin((double)arg);  // then sin
    }
    if (dim % 2) row[dim - 1] = 0.f;  // odd dims are zero-padded
  }
}

// ---------------------------------------------------------------------------------------------
ResBlock::ResBlock(const WeightStore& w, const std::string& p, int64_t in_ch, int64_t out_ch, int64_t emb_dim,
                   int64_t groups)
    : in_ch_(in_ch), out_ch_(out_ch), emb_dim_(emb_dim), groups_(groups) {
  load_norm(w, p + ".in_layers.0", in_ch, &norm1_g_, &norm1_b_);
  conv1_ = load_weight(w, p + ".in_layers.2", {out_ch, in_ch, 3, 3}, out_ch);
  emb_proj_ = load_weight(w, p + ".emb_layers.1", {out_ch, emb_dim}, out_ch);
  load_norm(w, p + ".out_layers.0", out_ch, &norm2_g_, &norm2_b_);
  conv2_ = load_weight(w, p + ".out_layers.3", {out_ch, out_ch, 3, 3}, out_ch);
  has_skip_ = in_ch != out_ch;
  if (has_skip_) skip_ = load_weight(w, p + ".skip_connection", {out_ch, in_ch, 1, 1}, out_ch);
}

void ResBlock::forward(Ctx& ctx, const Act& x, const float* emb_act, float* out) const {
  const int64_t B = x.B, H = x.H, W = x.W, HW = H * W;
  const Arena::Mark mark = ctx.arena.mark();
  float* h1 = ctx.arena.alloc_f32((size_t)(B * in_ch_ * HW));  // [B, Cin, H, W]
  ND_TIMED(GroupNorm,
           cpu::group_norm(ctx.pool, x.data, h1, B, in_ch_, HW, (int)groups_, norm1_g_, norm1_b_, 1e-5f, true));
  // h2 = conv1(h1) + e[:, :, None, None]: the time embedding rides in the conv's bias epilogue
  // (one bias vector per batch element, so one conv call each) instead of another pass over h2.
  float* e = ctx.arena.alloc_f32((size_t)(B * out_ch_));  // [B, Cout]
  ND_TIMED(Linear,
           cpu::linear(ctx.pool, emb_act, B, emb_dim_, emb_dim_, emb_proj_.ref, out_ch_, emb_proj_.bias, e, out_ch_));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < out_ch_; ++c) e[b * out_ch_ + c] += conv1_.bias[c];
  float* h2 = ctx.arena.alloc_f32((size_t)(B * out_ch_ * HW));  // [B, Cout, H, W]
  for (int64_t b = 0; b < B; ++b)
    ND_TIMED(Conv, cpu::conv2d(ctx.pool, h1 + b * in_ch_ * HW, 1, in_ch_, H, W, conv1_.ref, out_ch_, 3, 3, 1, 1,
                               e + b * out_ch_, h2 + b * out_ch_ * HW));
  ND_TIMED(GroupNorm, cpu::group_norm(ctx.pool, h2, h2, B, out_ch_, HW, (int)groups_, norm2_g_, norm2_b_, 1e-5f, true));
  ND_TIMED(Conv, cpu::conv2d(ctx.pool, h2, B, out_ch_, H, W, conv2_.ref, out_ch_, 3, 3, 1, 1, conv2_.bias,
                             out));  // [B, Cout, H, W]
  if (has_skip_) {
    float* s = h1;  // reuse: [B, Cout, H, W] fits only when Cout <= Cin
    if (out_ch_ > in_ch_) s = ctx.arena.alloc_f32((size_t)(B * out_ch_ * HW));
    ND_TIMED(Conv, cpu::conv2d(ctx.pool, x.data, B, in_ch_, H, W, skip_.ref, out_ch_, 1, 1, 1, 0, skip_.bias, s));
    ND_TIMED(Elementwise, cpu::add(ctx.pool, s, out, out, B * out_ch_ * HW));  // skip_connection(x) + h
  } else {
    ND_TIMED(Elementwise, cpu::add(ctx.pool, x.data, out, out, B * out_ch_ * HW));  // x + h
  }
  ctx.arena.reset(mark);
}

// ---------------------------------------------------------------------------------------------
Downsample::Downsample(const WeightStore& w, const std::string& p, int64_t channels) : channels_(channels) {
  op_ = load_weight(w, p + ".op", {channels, channels, 3, 3}, channels);
}

void Downsample::forward(Ctx& ctx, const Act& x, float* out) const {
  ND_TIMED(Conv,
           cpu::conv2d(ctx.pool, x.data, x.B, channels_, x.H, x.W, op_.ref, channels_, 3, 3, 2, 1, op_.bias, out));
}

Upsample::Upsample(const WeightStore& w, const std::string& p, int64_t channels) : channels_(channels) {
  conv_ = load_weight(w, p + ".conv", {channels, channels, 3, 3}, channels);
}

void Upsample::forward(Ctx& ctx, const Act& x, int64_t Ho, int64_t Wo, float* out) const {
  const Arena::Mark mark = ctx.arena.mark();
  const int64_t BC = x.B * channels_;
  float* up = ctx.arena.alloc_f32((size_t)(BC * Ho * Wo));  // [B, C, Ho, Wo]
  if (Ho == 2 * x.H && Wo == 2 * x.W) {
    ND_TIMED(Elementwise, cpu::upsample_nearest2x(ctx.pool, x.data, up, BC, x.H, x.W));
  } else {
    // F.interpolate(size=(Ho, Wo), mode="nearest"): source index floor(dst * in / out).
    const float sy = (float)x.H / (float)Ho, sx = (float)x.W / (float)Wo;
    ND_TIMED(Elementwise, ctx.pool.parallel_for(BC, [&](int64_t b, int64_t e, int) {
      for (int64_t bc = b; bc < e; ++bc)
        for (int64_t oy = 0; oy < Ho; ++oy) {
          const int64_t iy = std::min((int64_t)std::floor((float)oy * sy), x.H - 1);
          for (int64_t ox = 0; ox < Wo; ++ox) {
            const int64_t ix = std::min((int64_t)std::floor((float)ox * sx), x.W - 1);
            up[(bc * Ho + oy) * Wo + ox] = x.data[(bc * x.H + iy) * x.W + ix];
          }
        }
    }));
  }
  ND_TIMED(Conv, cpu::conv2d(ctx.pool, up, x.B, channels_, Ho, Wo, conv_.ref, channels_, 3, 3, 1, 1, conv_.bias, out));
  ctx.arena.reset(mark);
}

}  // namespace nd::unet
