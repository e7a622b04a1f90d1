// The layered U-Net's building blocks over the backend interface (backend/backend.h) (LDM names: ResBlock in_layers/emb_layers/out_layers/
// skip_connection, SpatialTransformer norm/proj_in/transformer_blocks.0/proj_out). Activations are f32 NCHW Buffers.
#pragma once
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/cancel.h"
#include "core/tensor.h"
#include "core/threadpool.h"
#include "models/weights.h"

namespace nd::models::layered {

// Head-averaged attention probabilities of one layer, kept for S-CFG (lib/guidance/scfg.ts).
struct Capture {
  std::string name;  // e.g. "middle_block.1.transformer_blocks.0.attn2"
  bool cross = false;
  int64_t h = 0, w = 0, nk = 0;
  std::vector<float> probs;  // [B, h*w, nk]
};

struct Net {
  const Backend& be;
  ThreadPool& pool;
  const WeightStore& w;
  int groups;
  int64_t head_dim;
};

// Heads of an attention layer of C channels, as training/model.py counts them: floor(C / head_dim), at
// least 1; each head then has C / heads channels (equal to head_dim when head_dim divides C).
inline int64_t attention_heads(int64_t C, int64_t head_dim) { return C / head_dim > 0 ? C / head_dim : 1; }
inline int64_t attention_head_size(int64_t C, int64_t head_dim) { return C / attention_heads(C, head_dim); }

// conv `name` (weight [cout, cin, k, k], bias [cout]) with stride/pad
Buffer conv(Net& n, const std::string& name, const Buffer& x, int64_t cout, int k, int stride, int pad);
// y = x · Wᵀ + b for x [M, K] rows -> [M, N]
Buffer linear(Net& n, const std::string& name, const float* x, int64_t M, int64_t K, int64_t N, bool bias = true);
// channel concatenation [B, Ca, H, W] ++ [B, Cb, H, W]
Buffer concat_channels(const Buffer& a, const Buffer& b);

// ResBlock: skip(x) + out_layers(in_layers(x) + emb_layers(emb)); emb_silu = SiLU(time embedding) [B, E]
Buffer res_block(Net& n, const std::string& p, const Buffer& x, const Buffer& emb_silu, int64_t cout);
// SD1-style SpatialTransformer with one block; self_scale = softmax scale of attn1. With `capture`, the
// head-averaged probabilities of attn1 and attn2 are appended to it (names relative to the U-Net prefix `root`).
Buffer spatial_transformer(Net& n, const std::string& p, const Buffer& x, const float* ctx, int64_t n_ctx,
                           int64_t ctx_dim, float self_scale, std::vector<Capture>* capture = nullptr,
                           const std::string& root = "");
// nearest 2x + conv 3x3 (`p`.conv)
Buffer upsample(Net& n, const std::string& p, const Buffer& x, int64_t cout);
// GroupNorm + SiLU + conv 3x3 (`p`.norm, `p`.conv)
Buffer out_head(Net& n, const std::string& p, const Buffer& x, int64_t cout);

}  // namespace nd::models::layered
