#include "models/vae_blocks.h"

#include <cmath>
#include <cstring>

#include "nn/profile.h"

namespace nd::vae {
namespace {

void check_input(const PooledBuffer& x, int64_t channels, const char* what) {
  if (x.shape().size() != 4 || x.dim(1) != channels)
    fail(code::kInternal, std::string(what) + ": expected " + std::to_string(channels) + " channels but received " +
                              shape_str(x.shape()));
}

}  // namespace

Conv2d load_conv(const WeightStore& store, const std::string& name, int64_t cout, int64_t cin, int kernel) {
  return Conv2d::load(store, name, cout, cin, kernel, 1, kernel / 2, kernel == 1 ? Shape{cout, cin} : Shape{});
}

GroupNorm load_norm(const WeightStore& store, const std::string& name, int64_t channels, int groups) {
  return GroupNorm::load(store, name, channels, groups, kNormEps);
}

PooledBuffer conv(BufferPool& acts, Compute& c, const Conv2d& conv, const PooledBuffer& x) {
  check_input(x, conv.cin, "Conv2d");
  const int64_t B = x.dim(0), H = x.dim(2), W = x.dim(3);
  PooledBuffer y(acts, {B, conv.cout, H, W});
  conv.forward(c, x.data(), B, H, W, y.data());
  return y;
}

void group_norm(Compute& c, const GroupNorm& norm, const PooledBuffer& x, float* y, bool silu) {
  check_input(x, norm.channels, "GroupNorm");
  norm.forward(c, x.data(), y, x.dim(0), x.dim(2) * x.dim(3), silu);
}

ResnetBlock ResnetBlock::load(const WeightStore& store, const std::string& name, int64_t cin, int64_t cout,
                              int groups) {
  ResnetBlock r;
  r.norm1 = load_norm(store, name + ".norm1", cin, groups);
  r.conv1 = load_conv(store, name + ".conv1", cout, cin, 3);
  r.norm2 = load_norm(store, name + ".norm2", cout, groups);
  r.conv2 = load_conv(store, name + ".conv2", cout, cout, 3);
  if (cin != cout) r.nin_shortcut = load_conv(store, name + ".nin_shortcut", cout, cin, 1);
  return r;
}

// Buffers, in units of one [B, cout, H, W] map: with a shortcut (cin > cout at the decoder's
// channel drops) x (cin) + out + h, the last conv reusing x; without, x + n + h, the result
// landing in x. Either way the residual add is out = a + b with the same operands as before.
PooledBuffer ResnetBlock::operator()(BufferPool& acts, Compute& c, PooledBuffer x) const {
  check_input(x, norm1.channels, "ResnetBlock");
  const int64_t B = x.dim(0), H = x.dim(2), W = x.dim(3), cout = conv1.cout;
  const Shape out_shape{B, cout, H, W};
  if (nin_shortcut.present) {
    PooledBuffer out(acts, out_shape);
    nin_shortcut.forward(c, x.data(), B, H, W, out.data());  // [B, cout, H, W]
    group_norm(c, norm1, x, x.data(), /*silu=*/true);        // [B, cin, H, W], in place: x is dead after conv1
    PooledBuffer h(acts, out_shape);
    conv1.forward(c, x.data(), B, H, W, h.data());     // [B, cout, H, W]
    group_norm(c, norm2, h, h.data(), /*silu=*/true);  // (dropout is identity at inference)
    PooledBuffer t = std::move(x);
    if (t.capacity() >= (size_t)numel(out_shape))
      t.reshape(out_shape);
    else
      t = PooledBuffer(acts, out_shape);
    conv2.forward(c, h.data(), B, H, W, t.data());                                           // [B, cout, H, W]
    ND_TIMED(Elementwise, c.be.add(c.pool, t.data(), out.data(), out.data(), out.numel()));  // conv2(h) + shortcut(x)
    return out;
  }
  PooledBuffer n(acts, x.shape());
  group_norm(c, norm1, x, n.data(), /*silu=*/true);  // [B, cin, H, W]
  PooledBuffer h(acts, out_shape);
  conv1.forward(c, n.data(), B, H, W, h.data());                                     // [B, cout, H, W]
  group_norm(c, norm2, h, h.data(), /*silu=*/true);                                  // [B, cout, H, W]
  conv2.forward(c, h.data(), B, H, W, n.data());                                     // n := conv2(h) (cin == cout)
  ND_TIMED(Elementwise, c.be.add(c.pool, n.data(), x.data(), x.data(), x.numel()));  // conv2(h) + x, into x
  return x;
}

AttnBlock AttnBlock::load(const WeightStore& store, const std::string& name, int64_t channels, int groups) {
  AttnBlock a;
  a.norm = load_norm(store, name + ".norm", channels, groups);
  a.q = load_conv(store, name + ".q", channels, channels, 1);
  a.k = load_conv(store, name + ".k", channels, channels, 1);
  a.v = load_conv(store, name + ".v", channels, channels, 1);
  a.proj_out = load_conv(store, name + ".proj_out", channels, channels, 1);
  return a;
}

PooledBuffer AttnBlock::operator()(BufferPool& acts, Compute& c, PooledBuffer x) const {
  check_input(x, norm.channels, "AttnBlock");
  const int64_t B = x.dim(0), C = norm.channels, N = x.dim(2) * x.dim(3);
  PooledBuffer tokens(acts, {B, N, C});
  {
    PooledBuffer n(acts, x.shape());
    group_norm(c, norm, x, n.data(), /*silu=*/false);                          // [B, C, H, W]
    ND_TIMED(Copy, c.be.to_tokens(c.pool, n.data(), tokens.data(), B, C, N));  // [B, HW, C]
  }
  // The 1x1 convolutions are Linear layers over token rows: q | k | v side by side in [B·HW, 3C].
  PooledBuffer qkv(acts, {B, N, 3 * C});
  const Conv2d* proj[3] = {&q, &k, &v};
  for (int i = 0; i < 3; ++i)
    ND_TIMED(Linear, c.be.linear(c.pool, tokens.data(), B * N, C, C, proj[i]->weight, C, proj[i]->bias,
                                 qkv.data() + i * C, 3 * C));
  AttentionArgs a;
  a.q = qkv.data();
  a.k = qkv.data() + C;
  a.v = qkv.data() + 2 * C;
  a.out = tokens.data();  // the normalised tokens are no longer needed
  a.batch = B;
  a.heads = 1;
  a.nq = a.nk = N;
  a.head_dim = C;
  a.q_row = a.k_row = a.v_row = 3 * C;
  a.out_row = C;
  a.q_batch = a.k_batch = a.v_batch = N * 3 * C;
  a.out_batch = N * C;
  a.scale = 1.f / std::sqrt((float)C);
  ND_TIMED(Attention, c.be.attention(c.pool, a));  // [B, HW, C]
  PooledBuffer projected = std::move(qkv);         // q, k, v are no longer needed
  projected.reshape({B, N, C});
  ND_TIMED(Linear, c.be.linear(c.pool, tokens.data(), B * N, C, C, proj_out.weight, C, proj_out.bias, projected.data(),
                               C));  // [B, HW, C]
  ND_TIMED(Copy,
           c.be.add_from_tokens(c.pool, projected.data(), x.data(), x.data(), B, C, N));  // x += tokens^T, [B, C, H, W]
  return x;
}

Upsample Upsample::load(const WeightStore& store, const std::string& name, int64_t channels) {
  return Upsample{load_conv(store, name + ".conv", channels, channels, 3)};
}

PooledBuffer Upsample::operator()(BufferPool& acts, Compute& c, PooledBuffer x) const {
  check_input(x, conv.cin, "Upsample");
  const int64_t B = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  PooledBuffer up(acts, {B, C, 2 * H, 2 * W});
  ND_TIMED(Elementwise, c.be.upsample_nearest2x(c.pool, x.data(), up.data(), B * C, H, W));  // [B, C, 2H, 2W]
  x.reset();
  return vae::conv(acts, c, conv, up);  // [B, C, 2H, 2W]
}

Downsample Downsample::load(const WeightStore& store, const std::string& name, int64_t channels) {
  return Downsample{load_conv(store, name + ".conv", channels, channels, 3)};
}

PooledBuffer Downsample::operator()(BufferPool& acts, Compute& c, PooledBuffer x) const {
  check_input(x, conv.cin, "Downsample");
  const int64_t B = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  PooledBuffer padded(acts, {B, C, H + 1, W + 1});  // zeros on the last row and column
  ND_TIMED(Copy, c.pool.parallel_for(B * C, [&](int64_t s, int64_t e, int) {
    for (int64_t bc = s; bc < e; ++bc) {
      float* dst = padded.data() + bc * (H + 1) * (W + 1);
      for (int64_t i = 0; i < H; ++i) {
        std::memcpy(dst + i * (W + 1), x.data() + (bc * H + i) * W, (size_t)W * sizeof(float));
        dst[i * (W + 1) + W] = 0.f;
      }
      std::memset(dst + H * (W + 1), 0, (size_t)(W + 1) * sizeof(float));
    }
  }));
  x.reset();
  const int64_t Ho = (H + 1 - 3) / 2 + 1, Wo = (W + 1 - 3) / 2 + 1;
  PooledBuffer y(acts, {B, conv.cout, Ho, Wo});
  ND_TIMED(Conv, c.be.conv2d(c.pool, padded.data(), B, C, H + 1, W + 1, conv.weight, conv.cout, 3, 3, 2, 0, conv.bias,
                             y.data()));
  return y;  // [B, C, H/2, W/2]
}

}  // namespace nd::vae
