// SpatialTransformer (LDM attention.py / diffusers Transformer2DModel): group norm, proj_in,
// `depth` BasicTransformerBlocks (LN -> self-attention, LN -> cross-attention, LN -> GEGLU
// feed-forward, each with a residual), proj_out, residual. A 1x1-conv projection (SD1) and a
// Linear projection (SD2) are the same product on token rows, so both run as `linear`; only
// the checked weight shape differs.
#include <algorithm>
#include <cmath>

#include "nn/blocks.h"
#include "nn/profile.h"

namespace nd::nn {

namespace {
constexpr int64_t kFeedForwardRows = 1024;  // token rows per feed-forward chunk
}  // namespace

SpatialTransformer::SpatialTransformer(const WeightStore& w, const std::string& p, const TransformerConfig& config)
    : prefix_(p), cfg_(config) {
  const int64_t C = cfg_.channels, D = cfg_.context_dim;
  if (cfg_.heads <= 0 || C % cfg_.heads != 0)
    fail_expected(code::kInvalidArgument, "a head count dividing " + std::to_string(C) + " channels",
                  "the attention heads of " + p, std::to_string(cfg_.heads));
  norm_ = GroupNorm::load(w, p + ".norm", C, (int)cfg_.groups, 1e-6f);
  // A 1x1-conv projection (SD1) and a Linear projection (SD2) are the same product on token rows.
  const Shape proj = cfg_.linear_projection ? Shape{C, C} : Shape{C, C, 1, 1};
  proj_in_ = Linear::load(w, p + ".proj_in", C, C, true, proj);
  proj_out_ = Linear::load(w, p + ".proj_out", C, C, true, proj);
  for (int64_t d = 0; d < cfg_.depth; ++d) {
    const std::string b = p + ".transformer_blocks." + std::to_string(d);
    Block k;
    k.norm1 = LayerNorm::load(w, b + ".norm1", C, 1e-5f);
    k.norm2 = LayerNorm::load(w, b + ".norm2", C, 1e-5f);
    k.norm3 = LayerNorm::load(w, b + ".norm3", C, 1e-5f);
    k.q1 = Linear::load(w, b + ".attn1.to_q", C, C, false);
    k.k1 = Linear::load(w, b + ".attn1.to_k", C, C, false);
    k.v1 = Linear::load(w, b + ".attn1.to_v", C, C, false);
    k.out1 = Linear::load(w, b + ".attn1.to_out.0", C, C, true);
    k.q2 = Linear::load(w, b + ".attn2.to_q", C, C, false);
    k.k2 = Linear::load(w, b + ".attn2.to_k", C, D, false);
    k.v2 = Linear::load(w, b + ".attn2.to_v", C, D, false);
    k.out2 = Linear::load(w, b + ".attn2.to_out.0", C, C, true);
    k.ff_in = Linear::load(w, b + ".ff.net.0.proj", 8 * C, C, true);  // GEGLU: value | gate
    k.ff_out = Linear::load(w, b + ".ff.net.2", C, 4 * C, true);
    blocks_.push_back(k);
  }
}

void SpatialTransformer::forward(Compute& c, const Act& x, const float* context, int64_t T,
                                 const AttentionCall& call) const {
  const int64_t B = x.B, C = cfg_.channels, N = x.H * x.W, M = B * N, heads = cfg_.heads, d = C / heads;
  const Arena::Mark mark = c.arena.mark();
  ThreadPool& pool = c.pool;

  float* xn = c.alloc((size_t)(M * C));                       // [B, C, N]
  norm_.forward(c, x.data, xn, B, N, /*silu=*/false);         // norm
  float* tokens = c.alloc((size_t)(M * C));                   // [B, N, C]
  ND_TIMED(Copy, c.be.to_tokens(pool, xn, tokens, B, C, N));  // [B, N, C]
  float* hidden = c.alloc((size_t)(M * C));                   // [B, N, C]
  proj_in_.forward(c, tokens, M, hidden);                     // proj_in

  float* ln = xn;                                // [B, N, C] (reused)
  float* qkv = c.alloc((size_t)(M * 3 * C));     // [B, N, 3C]: q | k | v
  float* att = tokens;                           // [B, N, C] (reused)
  float* kv = c.alloc((size_t)(B * T * 2 * C));  // [B, T, 2C]: k | v of the context
  // The feed-forward runs over row chunks: its 8C-wide intermediate would otherwise be the
  // largest activation of the whole U-Net (SD1.5, 64x64, batch 2: 84 MB).
  const int64_t ff_rows = std::min<int64_t>(M, kFeedForwardRows);
  float* ff = c.alloc((size_t)(ff_rows * 8 * C));     // [rows, 8C]
  float* gated = c.alloc((size_t)(ff_rows * 4 * C));  // [rows, 4C]
  const double base_scale = 1.0 / std::sqrt((double)d);
  // Same expression with and without entropy scaling: a factor of exactly 1 gives the stock scale.
  const float self_scale = call.self_scale > 0.f
                               ? call.self_scale
                               : (float)(call.use_factor ? base_scale * (double)call.self_scale_factor : base_scale);

  auto capture_into = [&](const std::string& name, bool cross, int64_t nk) -> float* {
    if (!call.capture) return nullptr;
    CapturedAttention cap;
    cap.name = name;
    cap.cross = cross;
    cap.h = x.H;
    cap.w = x.W;
    cap.nk = nk;
    cap.probs.assign((size_t)(B * N * nk), 0.f);
    call.capture->push_back(std::move(cap));
    return call.capture->back().probs.data();
  };

  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& k = blocks_[i];
    const std::string name = prefix_ + ".transformer_blocks." + std::to_string(i);
    // attn1: self-attention over the N image tokens
    k.norm1.forward(c, hidden, ln, M);           // [B, N, C]
    k.q1.forward(c, ln, M, qkv, 3 * C);          // q [B, N, C]
    k.k1.forward(c, ln, M, qkv + C, 3 * C);      // k [B, N, C]
    k.v1.forward(c, ln, M, qkv + 2 * C, 3 * C);  // v [B, N, C]
    AttentionArgs a;
    a.q = qkv;
    a.k = qkv + C;
    a.v = qkv + 2 * C;
    a.out = att;
    a.batch = B;
    a.heads = heads;
    a.nq = a.nk = N;
    a.head_dim = d;
    a.q_row = a.k_row = a.v_row = 3 * C;
    a.q_batch = a.k_batch = a.v_batch = N * 3 * C;
    a.out_row = C;
    a.out_batch = N * C;
    a.scale = self_scale;
    a.probs_mean = capture_into(name + ".attn1", false, N);
    ND_TIMED(Attention, c.be.attention(pool, a));               // [B, N, C]
    k.out1.forward(c, att, M, hidden, C, /*accumulate=*/true);  // hidden += to_out(att)

    // attn2: cross-attention of the image tokens to the T context tokens
    k.norm2.forward(c, hidden, ln, M);               // [B, N, C]
    k.q2.forward(c, ln, M, qkv, C);                  // q [B, N, C]
    k.k2.forward(c, context, B * T, kv, 2 * C);      // k [B, T, C]
    k.v2.forward(c, context, B * T, kv + C, 2 * C);  // v [B, T, C]
    a.q = qkv;
    a.k = kv;
    a.v = kv + C;
    a.nk = T;
    a.q_row = C;
    a.q_batch = N * C;
    a.k_row = a.v_row = 2 * C;
    a.k_batch = a.v_batch = T * 2 * C;
    a.scale = (float)base_scale;
    a.probs_mean = capture_into(name + ".attn2", true, T);
    ND_TIMED(Attention, c.be.attention(pool, a));               // [B, N, C]
    k.out2.forward(c, att, M, hidden, C, /*accumulate=*/true);  // hidden += to_out(att)

    // ff: GEGLU feed-forward
    k.norm3.forward(c, hidden, ln, M);  // [B, N, C]
    for (int64_t r0 = 0; r0 < M; r0 += ff_rows) {
      const int64_t rows = std::min(ff_rows, M - r0);
      k.ff_in.forward(c, ln + r0 * C, rows, ff);                                  // [rows, 8C]
      ND_TIMED(Elementwise, c.be.geglu(pool, ff, gated, rows, 4 * C));            // [rows, 4C]
      k.ff_out.forward(c, gated, rows, hidden + r0 * C, C, /*accumulate=*/true);  // hidden += ff  [rows, C]
    }
  }

  proj_out_.forward(c, hidden, M, tokens);                                      // proj_out: [B, N, C]
  ND_TIMED(Copy, c.be.add_from_tokens(pool, tokens, x.data, x.data, B, C, N));  // x += tokens^T  [B, C, H, W]
  c.arena.reset(mark);
}

}  // namespace nd::nn
