// SpatialTransformer (LDM attention.py / diffusers Transformer2DModel): group norm, proj_in,
// `depth` BasicTransformerBlocks (LN -> self-attention, LN -> cross-attention, LN -> GEGLU
// feed-forward, each with a residual), proj_out, residual. A 1x1-conv projection (SD1) and a
// Linear projection (SD2) are the same product on token rows, so both run as `linear`; only
// the checked weight shape differs.
#include <algorithm>
#include <cmath>

#include "models/profile.h"
#include "models/unet_blocks.h"

namespace nd::unet {

namespace {
constexpr int64_t kFeedForwardRows = 1024;  // token rows per feed-forward chunk
}  // namespace

SpatialTransformer::SpatialTransformer(const WeightStore& w, const std::string& p, int64_t C, int64_t heads,
                                       int64_t depth, int64_t context_dim, bool linear_projection, int64_t groups)
    : prefix_(p), channels_(C), heads_(heads), context_dim_(context_dim), groups_(groups) {
  if (heads <= 0 || C % heads != 0)
    fail_expected(code::kInvalidArgument, "a head count dividing " + std::to_string(C) + " channels",
                  "the attention heads of " + p, std::to_string(heads));
  load_norm(w, p + ".norm", C, &norm_g_, &norm_b_);
  const Shape proj = linear_projection ? Shape{C, C} : Shape{C, C, 1, 1};
  proj_in_ = load_weight(w, p + ".proj_in", proj, C);
  proj_out_ = load_weight(w, p + ".proj_out", proj, C);
  for (int64_t d = 0; d < depth; ++d) {
    const std::string b = p + ".transformer_blocks." + std::to_string(d);
    Block k{};
    load_norm(w, b + ".norm1", C, &k.norm1_g, &k.norm1_b);
    load_norm(w, b + ".norm2", C, &k.norm2_g, &k.norm2_b);
    load_norm(w, b + ".norm3", C, &k.norm3_g, &k.norm3_b);
    k.q1 = load_weight(w, b + ".attn1.to_q", {C, C}, 0);
    k.k1 = load_weight(w, b + ".attn1.to_k", {C, C}, 0);
    k.v1 = load_weight(w, b + ".attn1.to_v", {C, C}, 0);
    k.out1 = load_weight(w, b + ".attn1.to_out.0", {C, C}, C);
    k.q2 = load_weight(w, b + ".attn2.to_q", {C, C}, 0);
    k.k2 = load_weight(w, b + ".attn2.to_k", {C, context_dim}, 0);
    k.v2 = load_weight(w, b + ".attn2.to_v", {C, context_dim}, 0);
    k.out2 = load_weight(w, b + ".attn2.to_out.0", {C, C}, C);
    k.ff_in = load_weight(w, b + ".ff.net.0.proj", {8 * C, C}, 8 * C);
    k.ff_out = load_weight(w, b + ".ff.net.2", {C, 4 * C}, C);
    blocks_.push_back(k);
  }
}

void SpatialTransformer::forward(Ctx& ctx, const Act& x, const float* context, int64_t T,
                                 const AttentionCall& call) const {
  const int64_t B = x.B, C = channels_, N = x.H * x.W, M = B * N, d = C / heads_;
  const Arena::Mark mark = ctx.arena.mark();
  ThreadPool& pool = ctx.pool;

  float* xn = ctx.arena.alloc_f32((size_t)(M * C));  // [B, C, N]
  ND_TIMED(GroupNorm, cpu::group_norm(pool, x.data, xn, B, C, N, (int)groups_, norm_g_, norm_b_, 1e-6f, false));
  float* tokens = ctx.arena.alloc_f32((size_t)(M * C));  // [B, N, C]
  ND_TIMED(Copy, pool.parallel_for(B * N, [&](int64_t s, int64_t e, int) {
    for (int64_t r = s; r < e; ++r) {
      const int64_t b = r / N, n = r % N;
      for (int64_t c = 0; c < C; ++c) tokens[r * C + c] = xn[(b * C + c) * N + n];
    }
  }));
  float* hidden = ctx.arena.alloc_f32((size_t)(M * C));  // [B, N, C]
  ND_TIMED(Linear, cpu::linear(pool, tokens, M, C, C, proj_in_.ref, C, proj_in_.bias, hidden, C));

  float* ln = xn;                                            // [B, N, C] (reused)
  float* qkv = ctx.arena.alloc_f32((size_t)(M * 3 * C));     // [B, N, 3C]: q | k | v
  float* att = tokens;                                       // [B, N, C] (reused)
  float* kv = ctx.arena.alloc_f32((size_t)(B * T * 2 * C));  // [B, T, 2C]: k | v of the context
  // The feed-forward runs over row chunks: its 8C-wide intermediate would otherwise be the
  // largest activation of the whole U-Net (SD1.5, 64x64, batch 2: 84 MB).
  const int64_t ff_rows = std::min<int64_t>(M, kFeedForwardRows);
  float* ff = ctx.arena.alloc_f32((size_t)(ff_rows * 8 * C));     // [rows, 8C]
  float* gated = ctx.arena.alloc_f32((size_t)(ff_rows * 4 * C));  // [rows, 4C]
  const double base_scale = 1.0 / std::sqrt((double)d);
  // Same expression with and without entropy scaling: a factor of exactly 1 gives the stock scale.
  const float self_scale = (float)(call.use_factor ? base_scale * (double)call.self_scale_factor : base_scale);

  auto capture_into = [&](const std::string& name, bool cross, int64_t nk) -> float* {
    if (!call.capture) return nullptr;
    CapturedAttention c;
    c.name = name;
    c.cross = cross;
    c.h = x.H;
    c.w = x.W;
    c.nk = nk;
    c.probs.assign((size_t)(B * N * nk), 0.f);
    call.capture->push_back(std::move(c));
    return call.capture->back().probs.data();
  };

  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& k = blocks_[i];
    const std::string name = prefix_ + ".transformer_blocks." + std::to_string(i);
    // attn1: self-attention over the N image tokens
    ND_TIMED(LayerNorm, cpu::layer_norm(pool, hidden, ln, M, C, k.norm1_g, k.norm1_b, 1e-5f));   // [B, N, C]
    ND_TIMED(Linear, cpu::linear(pool, ln, M, C, C, k.q1.ref, C, nullptr, qkv, 3 * C));          // q [B, N, C]
    ND_TIMED(Linear, cpu::linear(pool, ln, M, C, C, k.k1.ref, C, nullptr, qkv + C, 3 * C));      // k [B, N, C]
    ND_TIMED(Linear, cpu::linear(pool, ln, M, C, C, k.v1.ref, C, nullptr, qkv + 2 * C, 3 * C));  // v [B, N, C]
    cpu::AttentionArgs a;
    a.q = qkv;
    a.k = qkv + C;
    a.v = qkv + 2 * C;
    a.out = att;
    a.batch = B;
    a.heads = heads_;
    a.nq = a.nk = N;
    a.head_dim = d;
    a.q_row = a.k_row = a.v_row = 3 * C;
    a.q_batch = a.k_batch = a.v_batch = N * 3 * C;
    a.out_row = C;
    a.out_batch = N * C;
    a.scale = self_scale;
    a.probs_mean = capture_into(name + ".attn1", false, N);
    ND_TIMED(Attention, cpu::attention(pool, a));  // [B, N, C]
    ND_TIMED(Linear,
             cpu::linear(pool, att, M, C, C, k.out1.ref, C, k.out1.bias, hidden, C, true));  // hidden += to_out(att)

    // attn2: cross-attention of the image tokens to the T context tokens
    ND_TIMED(LayerNorm, cpu::layer_norm(pool, hidden, ln, M, C, k.norm2_g, k.norm2_b, 1e-5f));  // [B, N, C]
    ND_TIMED(Linear, cpu::linear(pool, ln, M, C, C, k.q2.ref, C, nullptr, qkv, C));             // q [B, N, C]
    ND_TIMED(Linear,
             cpu::linear(pool, context, B * T, context_dim_, context_dim_, k.k2.ref, C, nullptr, kv, 2 * C));  // k
    ND_TIMED(Linear,
             cpu::linear(pool, context, B * T, context_dim_, context_dim_, k.v2.ref, C, nullptr, kv + C, 2 * C));  // v
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
    ND_TIMED(Attention, cpu::attention(pool, a));  // [B, N, C]
    ND_TIMED(Linear,
             cpu::linear(pool, att, M, C, C, k.out2.ref, C, k.out2.bias, hidden, C, true));  // hidden += to_out(att)

    // ff: GEGLU feed-forward
    ND_TIMED(LayerNorm, cpu::layer_norm(pool, hidden, ln, M, C, k.norm3_g, k.norm3_b, 1e-5f));  // [B, N, C]
    for (int64_t r0 = 0; r0 < M; r0 += ff_rows) {
      const int64_t rows = std::min(ff_rows, M - r0);
      ND_TIMED(Linear,
               cpu::linear(pool, ln + r0 * C, rows, C, C, k.ff_in.ref, 8 * C, k.ff_in.bias, ff, 8 * C));  // [rows, 8C]
      ND_TIMED(Elementwise, cpu::geglu(pool, ff, gated, rows, 4 * C));                                    // [rows, 4C]
      ND_TIMED(Linear, cpu::linear(pool, gated, rows, 4 * C, 4 * C, k.ff_out.ref, C, k.ff_out.bias, hidden + r0 * C, C,
                                   true));  // hidden += ff  [rows, C]
    }
  }

  ND_TIMED(Linear, cpu::linear(pool, hidden, M, C, C, proj_out_.ref, C, proj_out_.bias, tokens, C));  // [B, N, C]
  ND_TIMED(Copy, pool.parallel_for(B * C, [&](int64_t s, int64_t e, int) {  // x += tokens^T  [B, C, H, W]
    for (int64_t r = s; r < e; ++r) {
      const int64_t b = r / C, c = r % C;
      float* dst = x.data + r * N;
      const float* src = tokens + b * N * C + c;
      for (int64_t n = 0; n < N; ++n) dst[n] += src[n * C];
    }
  }));
  ctx.arena.reset(mark);
}

}  // namespace nd::unet
