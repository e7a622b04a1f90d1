// ResBlock, Downsample, Upsample (the SpatialTransformer is in nn/transformer.cc).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "nn/blocks.h"
#include "nn/profile.h"

namespace nd::nn {

ResBlock::ResBlock(const WeightStore& w, const std::string& p, const ResBlockConfig& config) : cfg_(config) {
  const int64_t in_ch = cfg_.in_ch, out_ch = cfg_.out_ch;
  const int groups = (int)cfg_.groups;
  in_norm_ = GroupNorm::load(w, p + ".in_layers.0", in_ch, groups, 1e-5f);
  in_conv_ = Conv2d::load(w, p + ".in_layers.2", out_ch, in_ch, 3);
  emb_proj_ = Linear::load(w, p + ".emb_layers.1", out_ch, cfg_.emb_dim, true);
  out_norm_ = GroupNorm::load(w, p + ".out_layers.0", out_ch, groups, 1e-5f);
  out_conv_ = Conv2d::load(w, p + ".out_layers.3", out_ch, out_ch, 3);
  if (in_ch != out_ch) skip_ = Conv2d::load(w, p + ".skip_connection", out_ch, in_ch, 1);
}

void ResBlock::forward(Compute& c, const Act& x, const float* emb_act, float* out) const {
  const int64_t B = x.B, H = x.H, W = x.W, HW = H * W, in_ch = cfg_.in_ch, out_ch = cfg_.out_ch;
  const Arena::Mark mark = c.arena.mark();
  float* h1 = c.alloc((size_t)(B * in_ch * HW));          // [B, Cin, H, W]
  in_norm_.forward(c, x.data, h1, B, HW, /*silu=*/true);  // in_layers.0-1
  // h2 = conv1(h1) + e[:, :, None, None]: the time embedding rides in the conv's bias epilogue
  // (one bias vector per batch element, so one conv call each) instead of another pass over h2.
  float* e = c.alloc((size_t)(B * out_ch));  // [B, Cout]
  emb_proj_.forward(c, emb_act, B, e);       // emb_layers.1
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ch = 0; ch < out_ch; ++ch) e[b * out_ch + ch] += in_conv_.bias[ch];
  float* h2 = c.alloc((size_t)(B * out_ch * HW));  // [B, Cout, H, W]
  for (int64_t b = 0; b < B; ++b)
    in_conv_.forward(c, h1 + b * in_ch * HW, 1, H, W, h2 + b * out_ch * HW, e + b * out_ch);  // in_layers.2
  out_norm_.forward(c, h2, h2, B, HW, /*silu=*/true);  // out_layers.0-2 (dropout is identity)
  out_conv_.forward(c, h2, B, H, W, out);              // out_layers.3: [B, Cout, H, W]
  if (skip_.present) {
    float* s = h1;  // reuse: [B, Cout, H, W] fits only when Cout <= Cin
    if (out_ch > in_ch) s = c.alloc((size_t)(B * out_ch * HW));
    skip_.forward(c, x.data, B, H, W, s);                                   // skip_connection(x)
    ND_TIMED(Elementwise, c.be.add(c.pool, s, out, out, B * out_ch * HW));  // skip_connection(x) + h
  } else {
    ND_TIMED(Elementwise, c.be.add(c.pool, x.data, out, out, B * out_ch * HW));  // x + h
  }
  c.arena.reset(mark);
}

// ---------------------------------------------------------------------------------------------
Downsample::Downsample(const WeightStore& w, const std::string& p, int64_t channels) {
  op_ = Conv2d::load(w, p + ".op", channels, channels, 3, /*stride=*/2, /*pad=*/1);
}

void Downsample::forward(Compute& c, const Act& x, float* out) const {
  op_.forward(c, x.data, x.B, x.H, x.W, out);  // [B, C, ceil(H/2), ceil(W/2)]
}

Upsample::Upsample(const WeightStore& w, const std::string& p, int64_t channels, int64_t out_channels) {
  conv_ = Conv2d::load(w, p + ".conv", out_channels > 0 ? out_channels : channels, channels, 3);
}

void Upsample::forward(Compute& c, const Act& x, int64_t Ho, int64_t Wo, float* out) const {
  const Arena::Mark mark = c.arena.mark();
  const int64_t BC = x.B * conv_.cin;
  float* up = c.alloc((size_t)(BC * Ho * Wo));  // [B, C, Ho, Wo]
  if (Ho == 2 * x.H && Wo == 2 * x.W) {
    ND_TIMED(Elementwise, c.be.upsample_nearest2x(c.pool, x.data, up, BC, x.H, x.W));
  } else {
    ND_TIMED(Elementwise, c.be.resize_nearest(c.pool, x.data, up, BC, x.H, x.W, Ho, Wo));
  }
  conv_.forward(c, up, x.B, Ho, Wo, out);  // [B, C, Ho, Wo]
  c.arena.reset(mark);
}

void concat_channels(Compute& c, const Act& a, const Act& b, float* out) {
  if (b.B != a.B || b.H != a.H || b.W != a.W)
    fail(code::kInternal, "Channel concatenation of [" + std::to_string(a.B) + ", " + std::to_string(a.C) + ", " +
                              std::to_string(a.H) + ", " + std::to_string(a.W) + "] and a map of another size");
  ND_TIMED(Copy, c.be.concat_channels(c.pool, a.data, a.C, b.data, b.C, out, a.B, a.H * a.W));
}

}  // namespace nd::nn
