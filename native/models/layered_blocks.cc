#include "models/layered_blocks.h"

#include <cmath>
#include <cstring>


namespace nd::models::layered {

namespace {

WeightRef ref(const Tensor& t) { return WeightRef{t.data, t.dtype}; }

// GroupNorm `name` over x (optionally fused SiLU) into a new buffer.
Buffer group_norm(Net& n, const std::string& name, const Buffer& x, float eps, bool silu) {
  Buffer y(x.shape);
  const int64_t C = x.dim(1);
  n.be.group_norm(n.pool, x.data(), y.data(), x.dim(0), C, x.dim(2) * x.dim(3), n.groups,
                  n.w.f32(name + ".weight").data(), n.w.f32(name + ".bias").data(), eps, silu);
  return y;
}

// [B, C, HW] <-> [B, HW, C]
void transpose_last2(const float* x, float* y, int64_t B, int64_t R, int64_t Cc) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < Cc; ++c) y[(b * Cc + c) * R + r] = x[(b * R + r) * Cc + c];
}

// Multi-head attention `p` (to_q/to_k/to_v without bias, to_out.0 with bias) of x [B, N, C] over kv [B, M, D].
Buffer attention(Net& n, const std::string& p, const float* x, int64_t B, int64_t N, int64_t C, const float* kv,
                 int64_t M, int64_t D, float scale, float* probs_mean = nullptr) {
  Buffer q = linear(n, p + ".to_q", x, B * N, C, C, false);   // [B, N, C]
  Buffer k = linear(n, p + ".to_k", kv, B * M, D, C, false);  // [B, M, C]
  Buffer v = linear(n, p + ".to_v", kv, B * M, D, C, false);  // [B, M, C]
  Buffer o(Shape{B, N, C});
  AttentionArgs a;
  a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = o.data();
  a.batch = B, a.heads = attention_heads(C, n.head_dim), a.nq = N, a.nk = M;
  a.head_dim = attention_head_size(C, n.head_dim);
  a.q_row = a.k_row = a.v_row = a.out_row = C;
  a.q_batch = a.out_batch = N * C;
  a.k_batch = a.v_batch = M * C;
  a.scale = scale;
  a.probs_mean = probs_mean;  // [B, N, M] when capturing (S-CFG)
  n.be.attention(n.pool, a);
  return linear(n, p + ".to_out.0", o.data(), B * N, C, C);  // [B, N, C]
}

void layer_norm(Net& n, const std::string& name, const float* x, float* y, int64_t M, int64_t C) {
  n.be.layer_norm(n.pool, x, y, M, C, n.w.f32(name + ".weight").data(), n.w.f32(name + ".bias").data(), 1e-5f);
}

}  // namespace

Buffer conv(Net& n, const std::string& name, const Buffer& x, int64_t cout, int k, int stride, int pad) {
  const int64_t B = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const Tensor& wt = n.w.get(name + ".weight", Shape{cout, C, k, k});
  const std::vector<float>& bias = n.w.f32(name + ".bias");
  if ((int64_t)bias.size() != cout)
    fail_expected(code::kShapeMismatch, std::to_string(cout) + " values", "\"" + name + ".bias\"",
                  std::to_string(bias.size()));
  const int64_t Ho = (H + 2 * pad - k) / stride + 1, Wo = (W + 2 * pad - k) / stride + 1;
  Buffer y(Shape{B, cout, Ho, Wo});
  n.be.conv2d(n.pool, x.data(), B, C, H, W, ref(wt), cout, k, k, stride, pad, bias.data(), y.data());
  return y;
}

Buffer linear(Net& n, const std::string& name, const float* x, int64_t M, int64_t K, int64_t N, bool bias) {
  const Tensor& wt = n.w.get(name + ".weight", Shape{N, K});
  const float* b = nullptr;
  if (bias) {
    const std::vector<float>& bv = n.w.f32(name + ".bias");
    if ((int64_t)bv.size() != N)
      fail_expected(code::kShapeMismatch, std::to_string(N) + " values", "\"" + name + ".bias\"",
                    std::to_string(bv.size()));
    b = bv.data();
  }
  Buffer y(Shape{M, N});
  n.be.linear(n.pool, x, M, K, K, ref(wt), N, b, y.data(), N);
  return y;
}

Buffer concat_channels(const Buffer& a, const Buffer& b) {
  const int64_t B = a.dim(0), Ca = a.dim(1), Cb = b.dim(1), HW = a.dim(2) * a.dim(3);
  if (b.dim(0) != B || b.dim(2) != a.dim(2) || b.dim(3) != a.dim(3))
    fail(code::kInternal, "concat of " + shape_str(a.shape) + " and " + shape_str(b.shape));
  Buffer y(Shape{B, Ca + Cb, a.dim(2), a.dim(3)});
  for (int64_t i = 0; i < B; ++i) {
    std::memcpy(y.data() + i * (Ca + Cb) * HW, a.data() + i * Ca * HW, sizeof(float) * Ca * HW);
    std::memcpy(y.data() + (i * (Ca + Cb) + Ca) * HW, b.data() + i * Cb * HW, sizeof(float) * Cb * HW);
  }
  return y;
}

Buffer res_block(Net& n, const std::string& p, const Buffer& x, const Buffer& emb_silu, int64_t cout) {
  const int64_t B = x.dim(0), HW = x.dim(2) * x.dim(3);
  Buffer h = group_norm(n, p + ".in_layers.0", x, 1e-5f, true);                          // [B, Cin, H, W]
  h = conv(n, p + ".in_layers.2", h, cout, 3, 1, 1);                                     // [B, Cout, H, W]
  Buffer e = linear(n, p + ".emb_layers.1", emb_silu.data(), B, emb_silu.dim(1), cout);  // [B, Cout]
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < cout; ++c) {
      float* row = h.data() + (b * cout + c) * HW;
      const float add = e.data()[b * cout + c];
      for (int64_t i = 0; i < HW; ++i) row[i] += add;
    }
  h = group_norm(n, p + ".out_layers.0", h, 1e-5f, true);
  h = conv(n, p + ".out_layers.3", h, cout, 3, 1, 1);  // [B, Cout, H, W]
  if (x.dim(1) != cout) {
    Buffer s = conv(n, p + ".skip_connection", x, cout, 1, 1, 0);  // [B, Cout, H, W]
    n.be.add(n.pool, h.data(), s.data(), h.data(), h.numel());
  } else {
    n.be.add(n.pool, h.data(), x.data(), h.data(), h.numel());
  }
  return h;
}

Buffer spatial_transformer(Net& n, const std::string& p, const Buffer& x, const float* ctx, int64_t n_ctx,
                           int64_t ctx_dim, float self_scale, std::vector<Capture>* capture, const std::string& root) {
  const int64_t B = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), N = H * W;
  Buffer h = group_norm(n, p + ".norm", x, 1e-6f, false);  // [B, C, H, W]
  h = conv(n, p + ".proj_in", h, C, 1, 1, 0);              // [B, C, H, W]
  Buffer tok(Shape{B, N, C});
  transpose_last2(h.data(), tok.data(), B, C, N);  // [B, N, C]
  const std::string blk = p + ".transformer_blocks.0";
  const float cross_scale = 1.f / std::sqrt((float)attention_head_size(C, n.head_dim));
  auto capture_into = [&](const char* attn, bool cross, int64_t nk) -> float* {
    if (!capture) return nullptr;
    Capture c;
    c.name = blk.substr(root.size()) + attn;
    c.cross = cross;
    c.h = H, c.w = W, c.nk = nk;
    c.probs.assign((size_t)(B * N * nk), 0.f);
    capture->push_back(std::move(c));
    return capture->back().probs.data();
  };
  Buffer tmp(Shape{B, N, C});
  layer_norm(n, blk + ".norm1", tok.data(), tmp.data(), B * N, C);
  Buffer a = attention(n, blk + ".attn1", tmp.data(), B, N, C, tmp.data(), N, C, self_scale,
                       capture_into(".attn1", false, N));  // [B, N, C]
  n.be.add(n.pool, tok.data(), a.data(), tok.data(), tok.numel());
  layer_norm(n, blk + ".norm2", tok.data(), tmp.data(), B * N, C);
  a = attention(n, blk + ".attn2", tmp.data(), B, N, C, ctx, n_ctx, ctx_dim, cross_scale,
                capture_into(".attn2", true, n_ctx));  // [B, N, C]
  n.be.add(n.pool, tok.data(), a.data(), tok.data(), tok.numel());
  layer_norm(n, blk + ".norm3", tok.data(), tmp.data(), B * N, C);
  Buffer g = linear(n, blk + ".ff.net.0.proj", tmp.data(), B * N, C, 8 * C);  // [B, N, 8C]
  Buffer gg(Shape{B * N, 4 * C});
  n.be.geglu(n.pool, g.data(), gg.data(), B * N, 4 * C);         // [B, N, 4C]
  a = linear(n, blk + ".ff.net.2", gg.data(), B * N, 4 * C, C);  // [B, N, C]
  n.be.add(n.pool, tok.data(), a.data(), tok.data(), tok.numel());
  transpose_last2(tok.data(), h.data(), B, N, C);  // [B, C, H, W]
  Buffer y = conv(n, p + ".proj_out", h, C, 1, 1, 0);
  n.be.add(n.pool, y.data(), x.data(), y.data(), y.numel());
  return y;
}

Buffer upsample(Net& n, const std::string& p, const Buffer& x, int64_t cout) {
  Buffer u(Shape{x.dim(0), x.dim(1), 2 * x.dim(2), 2 * x.dim(3)});
  n.be.upsample_nearest2x(n.pool, x.data(), u.data(), x.dim(0) * x.dim(1), x.dim(2), x.dim(3));  // [B, C, 2H, 2W]
  return conv(n, p + ".conv", u, cout, 3, 1, 1);                                                 // [B, Cout, 2H, 2W]
}

Buffer out_head(Net& n, const std::string& p, const Buffer& x, int64_t cout) {
  Buffer h = group_norm(n, p + ".norm", x, 1e-5f, true);
  return conv(n, p + ".conv", h, cout, 3, 1, 1);
}

}  // namespace nd::models::layered
