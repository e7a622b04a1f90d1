#include "models/clip_text.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "models/checked_weights.h"
#include "models/profile.h"

namespace nd {
namespace {

constexpr float kLayerNormEps = 1e-5f;  // HF CLIP layer_norm_eps and OpenCLIP's nn.LayerNorm default

const char* kClipPrefix = "cond_stage_model.transformer.text_model.";
const char* kOpenClipPrefix = "cond_stage_model.model.";

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

}  // namespace

ClipTextEncoder::ClipTextEncoder(std::shared_ptr<const WeightStore> weights, const TextEncoderConfig& config)
    : weights_(std::move(weights)), config_(config) {
  if (!weights_) fail(code::kInvalidArgument, "Text encoder created without weights");
  check_config(config_);
  if (config_.kind == TextEncoderConfig::Kind::kClip)
    load_clip();
  else
    load_openclip();
}

std::vector<ClipTextEncoder::Projection> ClipTextEncoder::fuse_if_adjacent(std::vector<Projection> qkv) {
  if (qkv.size() != 3) return qkv;
  const size_t bytes = (size_t)(qkv[0].n * qkv[0].k) * dtype_size(qkv[0].weight.dtype);
  for (size_t i = 1; i < 3; ++i)
    if (qkv[i].weight.dtype != qkv[0].weight.dtype ||
        qkv[i].weight.data != static_cast<const uint8_t*>(qkv[i - 1].weight.data) + bytes)
      return qkv;
  const int64_t n = qkv[0].n;
  auto bias = std::make_unique<std::vector<float>>((size_t)(3 * n));
  for (size_t i = 0; i < 3; ++i) std::copy(qkv[i].bias, qkv[i].bias + n, bias->begin() + (ptrdiff_t)(i * n));
  Projection fused{qkv[0].weight, bias->data(), 3 * n, qkv[0].k, 0};
  fused_biases_.push_back(std::move(bias));
  return {fused};
}

// HF CLIPTextModel names (SD1 single files; diffusers SD1 text encoders map onto them).
void ClipTextEncoder::load_clip() {
  const WeightStore& s = *weights_;
  const std::string p = kClipPrefix;
  const int64_t C = config_.hidden, I = config_.intermediate;
  token_embedding_ = checked_matrix(s, p + "embeddings.token_embedding.weight", {config_.vocab_size, C});
  position_embedding_ = checked_f32(s, p + "embeddings.position_embedding.weight", {config_.max_positions, C});
  final_ln_weight_ = checked_f32(s, p + "final_layer_norm.weight", {C});
  final_ln_bias_ = checked_f32(s, p + "final_layer_norm.bias", {C});
  for (int64_t i = 0; i < config_.layers; ++i) {
    const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
    auto proj = [&](const std::string& name, int64_t n, int64_t k, int64_t column) {
      return Projection{checked_matrix(s, l + name + ".weight", {n, k}), checked_f32(s, l + name + ".bias", {n}), n, k,
                        column};
    };
    Layer layer;
    layer.ln1_weight = checked_f32(s, l + "layer_norm1.weight", {C});
    layer.ln1_bias = checked_f32(s, l + "layer_norm1.bias", {C});
    layer.qkv = fuse_if_adjacent(
        {proj("self_attn.q_proj", C, C, 0), proj("self_attn.k_proj", C, C, C), proj("self_attn.v_proj", C, C, 2 * C)});
    layer.out_proj = proj("self_attn.out_proj", C, C, 0);
    layer.ln2_weight = checked_f32(s, l + "layer_norm2.weight", {C});
    layer.ln2_bias = checked_f32(s, l + "layer_norm2.bias", {C});
    layer.fc1 = proj("mlp.fc1", I, C, 0);
    layer.fc2 = proj("mlp.fc2", C, I, 0);
    layers_.push_back(std::move(layer));
  }
}

// OpenCLIP names (SD2 single files). The attention projection is nn.MultiheadAttention's fused
// in_proj_weight [3C, C] (rows q, k, v); converted diffusers encoders may instead carry split
// attn.{q,k,v}_proj, so both are accepted.
void ClipTextEncoder::load_openclip() {
  const WeightStore& s = *weights_;
  const std::string p = kOpenClipPrefix;
  const int64_t C = config_.hidden, I = config_.intermediate;
  token_embedding_ = checked_matrix(s, p + "token_embedding.weight", {config_.vocab_size, C});
  position_embedding_ = checked_f32(s, p + "positional_embedding", {config_.max_positions, C});
  final_ln_weight_ = checked_f32(s, p + "ln_final.weight", {C});
  final_ln_bias_ = checked_f32(s, p + "ln_final.bias", {C});
  for (int64_t i = 0; i < config_.layers; ++i) {
    const std::string l = p + "transformer.resblocks." + std::to_string(i) + ".";
    auto proj = [&](const std::string& name, int64_t n, int64_t k, int64_t column) {
      return Projection{checked_matrix(s, l + name + ".weight", {n, k}), checked_f32(s, l + name + ".bias", {n}), n, k,
                        column};
    };
    Layer layer;
    layer.ln1_weight = checked_f32(s, l + "ln_1.weight", {C});
    layer.ln1_bias = checked_f32(s, l + "ln_1.bias", {C});
    if (s.has(l + "attn.in_proj_weight")) {
      layer.qkv = {Projection{checked_matrix(s, l + "attn.in_proj_weight", {3 * C, C}),
                              checked_f32(s, l + "attn.in_proj_bias", {3 * C}), 3 * C, C, 0}};
    } else {
      // the canonical split (lib/loading/keys.ts): row ranges of in_proj in single files, separate in diffusers folders
      layer.qkv = fuse_if_adjacent(
          {proj("attn.q_proj", C, C, 0), proj("attn.k_proj", C, C, C), proj("attn.v_proj", C, C, 2 * C)});
    }
    layer.out_proj = proj("attn.out_proj", C, C, 0);
    layer.ln2_weight = checked_f32(s, l + "ln_2.weight", {C});
    layer.ln2_bias = checked_f32(s, l + "ln_2.bias", {C});
    layer.fc1 = proj("mlp.c_fc", I, C, 0);
    layer.fc2 = proj("mlp.c_proj", C, I, 0);
    layers_.push_back(std::move(layer));
  }
}

// Pre-LN block: h += out_proj(causal_attention(ln_1(h))); h += fc2(act(fc1(ln_2(h)))).
void ClipTextEncoder::run_layer(ThreadPool& pool, const Layer& layer, float* hidden, int64_t batch, int64_t tokens,
                                float* norm, float* qkv, float* attn, float* mlp) const {
  const int64_t C = config_.hidden, M = batch * tokens, I = config_.intermediate;
  const int64_t heads = config_.heads, d = C / heads;
  ND_TIMED(LayerNorm,
           cpu::layer_norm(pool, hidden, norm, M, C, layer.ln1_weight, layer.ln1_bias, kLayerNormEps));  // [M, C]
  for (const Projection& p : layer.qkv)
    ND_TIMED(Linear,
             cpu::linear(pool, norm, M, C, C, p.weight, p.n, p.bias, qkv + p.column, 3 * C));  // [M, 3C] = q | k | v
  // Causal self-attention: query i sees keys 0..i. One fused-attention call per query position
  // keeps the mask exact (no -inf sentinels) and covers every batch row and head at once.
  for (int64_t i = 0; i < tokens; ++i) {
    cpu::AttentionArgs a;
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
    ND_TIMED(Attention, cpu::attention(pool, a));  // [B, 1, C] per position
  }
  ND_TIMED(Linear, cpu::linear(pool, attn, M, C, C, layer.out_proj.weight, C, layer.out_proj.bias, hidden, C,
                               /*accumulate=*/true));
  ND_TIMED(LayerNorm,
           cpu::layer_norm(pool, hidden, norm, M, C, layer.ln2_weight, layer.ln2_bias, kLayerNormEps));  // [M, C]
  ND_TIMED(Linear, cpu::linear(pool, norm, M, C, C, layer.fc1.weight, I, layer.fc1.bias, mlp, I));       // [M, I]
  if (config_.activation == TextEncoderConfig::Activation::kQuickGelu)
    ND_TIMED(Elementwise, cpu::quick_gelu(pool, mlp, M * I));
  else
    ND_TIMED(Elementwise, cpu::gelu(pool, mlp, M * I));
  ND_TIMED(Linear, cpu::linear(pool, mlp, M, I, I, layer.fc2.weight, C, layer.fc2.bias, hidden, C,
                               /*accumulate=*/true));  // [M, C]
}

Buffer ClipTextEncoder::encode(ThreadPool& pool, const int32_t* ids, int64_t batch, int64_t tokens,
                               const TextEncodeOptions& options) const {
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

  if (layers_to_run > 0) {
    std::vector<float> norm((size_t)(M * C)), qkv((size_t)(M * 3 * C)), attn((size_t)(M * C)),
        mlp((size_t)(M * config_.intermediate));
    for (int64_t l = 0; l < layers_to_run; ++l)
      run_layer(pool, layers_[(size_t)l], hidden.data(), batch, tokens, norm.data(), qkv.data(), attn.data(),
                mlp.data());
  }
  if (options.final_layer_norm)
    ND_TIMED(LayerNorm, cpu::layer_norm(pool, hidden.data(), hidden.data(), M, C, final_ln_weight_, final_ln_bias_,
                                        kLayerNormEps));
  return hidden;
}

}  // namespace nd
