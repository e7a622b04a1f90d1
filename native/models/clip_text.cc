#include "models/clip_text.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "nn/profile.h"

namespace nd {
namespace {

constexpr float kLayerNormEps = 1e-5f;  // HF CLIP layer_norm_eps and OpenCLIP's nn.LayerNorm default

void check_config(const TextEncoderConfig& c) {
  auto positive = [](int64_t v, const char* name) {
    if (v <= 0)
      fail_expected(code::kInvalidArgument, "a positive integer", std::string("config.") + name, std::to_string(v));
  };
  positive(c.hidden, "hidden");
  positive(c.heads, "heads");
  positive(c.intermediate, "intermediate");
  positive(c.vocab_size, "vocabSize");
  positive(c.max_positions, "maxPositions");
  if (c.layers < 0)
    fail_expected(code::kInvalidArgument, "a non-negative integer", "config.layers", std::to_string(c.layers));
  if (c.hidden % c.heads != 0)
    fail_expected(code::kInvalidArgument, "a head count dividing hidden (" + std::to_string(c.hidden) + ")",
                  "config.heads", std::to_string(c.heads));
  if (c.default_layers_to_run < 0 || c.default_layers_to_run > c.layers)
    fail_expected(code::kInvalidArgument, "an integer in [0, " + std::to_string(c.layers) + "]",
                  "config.defaultLayersToRun", std::to_string(c.default_layers_to_run));
  if (c.pad_token < 0 || c.pad_token >= c.vocab_size)
    fail_expected(code::kInvalidArgument, "a token id in [0, " + std::to_string(c.vocab_size) + ")", "config.padToken",
                  std::to_string(c.pad_token));
}

using nn::checked_f32;
using nn::checked_matrix;

}  // namespace

// HF CLIPTextModel names (SD1 single files; diffusers SD1 text encoders map onto them) and OpenCLIP names (SD2
// single files). OpenCLIP's attention projection is nn.MultiheadAttention's fused in_proj_weight [3C, C] (rows
// q, k, v); converted diffusers encoders may instead carry split attn.{q,k,v}_proj, so both are accepted.
struct ClipTextEncoder::Names {
  const char *prefix, *token_embedding, *position_embedding, *final_ln, *layer;
  const char *ln1, *ln2, *q, *k, *v, *fused_qkv, *out_proj, *fc1, *fc2;
};

namespace {
const ClipTextEncoder::Names* names_for(TextEncoderConfig::Kind kind);
}  // namespace

ClipTextEncoder::ClipTextEncoder(std::shared_ptr<const WeightStore> weights, const TextEncoderConfig& config)
    : weights_(std::move(weights)), config_(config), be_(default_backend()) {
  if (!weights_) fail(code::kInvalidArgument, "Text encoder created without weights");
  check_config(config_);
  load(*names_for(config_.kind));
}

namespace {
const ClipTextEncoder::Names kClipNames{"cond_stage_model.transformer.text_model.",
                                        "embeddings.token_embedding.weight",
                                        "embeddings.position_embedding.weight",
                                        "final_layer_norm",
                                        "encoder.layers.",
                                        "layer_norm1",
                                        "layer_norm2",
                                        "self_attn.q_proj",
                                        "self_attn.k_proj",
                                        "self_attn.v_proj",
                                        nullptr,
                                        "self_attn.out_proj",
                                        "mlp.fc1",
                                        "mlp.fc2"};
const ClipTextEncoder::Names kOpenClipNames{"cond_stage_model.model.",
                                            "token_embedding.weight",
                                            "positional_embedding",
                                            "ln_final",
                                            "transformer.resblocks.",
                                            "ln_1",
                                            "ln_2",
                                            "attn.q_proj",
                                            "attn.k_proj",
                                            "attn.v_proj",
                                            "attn.in_proj",
                                            "attn.out_proj",
                                            "mlp.c_fc",
                                            "mlp.c_proj"};
const ClipTextEncoder::Names* names_for(TextEncoderConfig::Kind kind) {
  return kind == TextEncoderConfig::Kind::kClip ? &kClipNames : &kOpenClipNames;
}
}  // namespace

std::vector<ClipTextEncoder::Projection> ClipTextEncoder::fuse_if_adjacent(std::vector<Projection> qkv) {
  if (qkv.size() != 3) return qkv;
  const nn::Linear& q = qkv[0].linear;
  const size_t bytes = (size_t)(q.out * q.in) * dtype_size(q.weight.dtype);
  for (size_t i = 1; i < 3; ++i)
    if (qkv[i].linear.weight.dtype != q.weight.dtype ||
        qkv[i].linear.weight.data != static_cast<const uint8_t*>(qkv[i - 1].linear.weight.data) + bytes)
      return qkv;
  const int64_t n = q.out;
  auto bias = std::make_unique<std::vector<float>>((size_t)(3 * n));
  for (size_t i = 0; i < 3; ++i)
    std::copy(qkv[i].linear.bias, qkv[i].linear.bias + n, bias->begin() + (ptrdiff_t)(i * n));
  nn::Linear fused = q;
  fused.bias = bias->data();
  fused.out = 3 * n;
  fused_biases_.push_back(std::move(bias));
  return {Projection{fused, 0}};
}

void ClipTextEncoder::load(const Names& names) {
  const WeightStore& s = *weights_;
  const std::string p = names.prefix;
  const int64_t C = config_.hidden, I = config_.intermediate;
  token_embedding_ = checked_matrix(s, p + names.token_embedding, {config_.vocab_size, C});
  position_embedding_ = checked_f32(s, p + names.position_embedding, {config_.max_positions, C});
  final_ln_ = nn::LayerNorm::load(s, p + names.final_ln, C, kLayerNormEps);
  for (int64_t i = 0; i < config_.layers; ++i) {
    const std::string l = p + names.layer + std::to_string(i) + ".";
    const auto linear = [&](const char* name, int64_t out, int64_t in) {
      return nn::Linear::load(s, l + name, out, in, /*with_bias=*/true);
    };
    Layer layer;
    layer.ln1 = nn::LayerNorm::load(s, l + names.ln1, C, kLayerNormEps);
    if (names.fused_qkv && s.has(l + names.fused_qkv + "_weight")) {
      nn::Linear fused;  // nn.MultiheadAttention's in_proj_weight / in_proj_bias
      fused.weight = checked_matrix(s, l + names.fused_qkv + "_weight", {3 * C, C});
      fused.bias = checked_f32(s, l + names.fused_qkv + "_bias", {3 * C});
      fused.in = C;
      fused.out = 3 * C;
      layer.qkv = {Projection{fused, 0}};
    } else {
      // the canonical split (lib/loading/keys.ts): row ranges of in_proj in single files, separate in diffusers folders
      layer.qkv = fuse_if_adjacent({Projection{linear(names.q, C, C), 0}, Projection{linear(names.k, C, C), C},
                                    Projection{linear(names.v, C, C), 2 * C}});
    }
    layer.out_proj = linear(names.out_proj, C, C);
    layer.ln2 = nn::LayerNorm::load(s, l + names.ln2, C, kLayerNormEps);
    layer.fc1 = linear(names.fc1, I, C);
    layer.fc2 = linear(names.fc2, C, I);
    layers_.push_back(std::move(layer));
  }
}

// Pre-LN block: h += out_proj(causal_attention(ln_1(h))); h += fc2(act(fc1(ln_2(h)))).
void ClipTextEncoder::run_layer(Compute& c, const Layer& layer, float* hidden, int64_t batch, int64_t tokens,
                                float* norm, float* qkv, float* attn, float* mlp) const {
  const int64_t C = config_.hidden, M = batch * tokens, I = config_.intermediate;
  const int64_t heads = config_.heads, d = C / heads;
  layer.ln1.forward(c, hidden, norm, M);                                                      // [M, C]
  for (const Projection& p : layer.qkv) p.linear.forward(c, norm, M, qkv + p.column, 3 * C);  // [M, 3C] = q | k | v
  // Causal self-attention: query i sees keys 0..i. One fused-attention call per query position
  // keeps the mask exact (no -inf sentinels) and covers every batch row and head at once.
  for (int64_t i = 0; i < tokens; ++i) {
    AttentionArgs a;
    a.q = qkv + i * 3 * C;
    a.k = qkv + C;
    a.v = qkv + 2 * C;
    a.out = attn + i * C;
    a.batch = batch;
    a.heads = heads;
    a.nq = 1;
    a.nk = i + 1;
    a.head_dim = d;
    a.q_row = a.k_row = a.v_row = 3 * C;
    a.out_row = C;
    a.q_batch = a.k_batch = a.v_batch = tokens * 3 * C;
    a.out_batch = tokens * C;
    a.scale = 1.f / std::sqrt((float)d);
    ND_TIMED(Attention, c.be.attention(c.pool, a));  // [B, 1, C] per position
  }
  layer.out_proj.forward(c, attn, M, hidden, C, /*accumulate=*/true);  // h += out_proj(attn)
  layer.ln2.forward(c, hidden, norm, M);                               // [M, C]
  layer.fc1.forward(c, norm, M, mlp);                                  // [M, I]
  if (config_.activation == TextEncoderConfig::Activation::kQuickGelu)
    ND_TIMED(Elementwise, c.be.quick_gelu(c.pool, mlp, M * I));
  else
    ND_TIMED(Elementwise, c.be.gelu(c.pool, mlp, M * I));
  layer.fc2.forward(c, mlp, M, hidden, C, /*accumulate=*/true);  // h += fc2(act): [M, C]
}

Buffer ClipTextEncoder::encode(ThreadPool& pool, const CancelFlag& cancel, const int32_t* ids, int64_t batch,
                               int64_t tokens, const TextEncodeOptions& options) const {
  const int64_t C = config_.hidden;
  if (batch < 1) fail_expected(code::kInvalidArgument, "a batch of at least 1", "batch", std::to_string(batch));
  if (tokens < 1 || tokens > config_.max_positions)
    fail_expected(code::kInvalidArgument, "1 to " + std::to_string(config_.max_positions) + " tokens per row",
                  "input ids", std::to_string(tokens));
  const int64_t layers_to_run = options.layers_to_run < 0 ? config_.default_layers_to_run : options.layers_to_run;
  if (layers_to_run > config_.layers)
    fail_expected(code::kInvalidArgument, "at most " + std::to_string(config_.layers) + " layers", "layersToRun",
                  std::to_string(layers_to_run));
  for (int64_t i = 0; i < batch * tokens; ++i)
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      fail_expected(code::kInvalidArgument, "token ids in [0, " + std::to_string(config_.vocab_size) + ")",
                    "input ids[" + std::to_string(i) + "]", std::to_string(ids[i]));

  const int64_t M = batch * tokens;
  prof::Scope forward_scope(prof::Op::Forward);
  Buffer hidden({batch, tokens, C});
  // Token embedding (gathered from the file-dtype table) + position embedding.
  ND_TIMED(Copy, pool.parallel_for(M, [&](int64_t b, int64_t e, int) {
    for (int64_t m = b; m < e; ++m) {
      const int64_t pos = m % tokens;
      const size_t row = (size_t)ids[m] * (size_t)C;
      float* h = hidden.data() + m * C;
      for (int64_t c = 0; c < C; ++c)
        h[c] = load_as_f32(token_embedding_.data, token_embedding_.dtype, row + (size_t)c) +
               position_embedding_[pos * C + c];
    }
  }));

  Arena arena(size_t(4) << 20);
  Compute c{be_, pool, arena, cancel};
  if (layers_to_run > 0) {
    float* norm = c.alloc((size_t)(M * C));                    // [M, C]
    float* qkv = c.alloc((size_t)(M * 3 * C));                 // [M, 3C]
    float* attn = c.alloc((size_t)(M * C));                    // [M, C]
    float* mlp = c.alloc((size_t)(M * config_.intermediate));  // [M, I]
    for (int64_t l = 0; l < layers_to_run; ++l) {
      c.check_cancel();
      run_layer(c, layers_[(size_t)l], hidden.data(), batch, tokens, norm, qkv, attn, mlp);
    }
  }
  if (options.final_layer_norm) final_ln_.forward(c, hidden.data(), hidden.data(), M);
  return hidden;
}

}  // namespace nd
