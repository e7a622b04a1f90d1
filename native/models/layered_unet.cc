#include "models/layered_unet.h"

#include <cmath>
#include <cstring>

#include "core/json.h"
#include "models/layered_blocks.h"

namespace nd::models {

namespace {

const char* kUnet = "model.diffusion_model.";
const char* kText = "cond_stage_model.transformer.text_model.";

const json::Value& field(const json::Value& o, const char* key, const std::string& where) {
  const json::Value* v = o.get(key);
  if (!v) fail(code::kInvalidFile, "Missing \"" + std::string(key) + "\" in " + where);
  return *v;
}

int64_t int_field(const json::Value& o, const char* key, const std::string& where, int64_t lo, int64_t hi) {
  const json::Value& v = field(o, key, where);
  if (!v.is_integer || v.integer < lo || v.integer > hi)
    fail_expected(code::kInvalidFile, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                  where + "." + key, v.is_integer ? std::to_string(v.integer) : "a non-integer");
  return v.integer;
}

std::vector<int64_t> int_list(const json::Value& o, const char* key, const std::string& where, int64_t lo, int64_t hi) {
  const json::Value& v = field(o, key, where);
  if (v.kind != json::Value::Kind::Array)
    fail_expected(code::kInvalidFile, "an array", where + "." + key, "another type");
  std::vector<int64_t> out;
  for (auto& e : v.array) {
    if (!e.is_integer || e.integer < lo || e.integer > hi)
      fail_expected(code::kInvalidFile, "integers in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                    where + "." + key, "an element out of range");
    out.push_back(e.integer);
  }
  return out;
}

// LDM timestep embedding of 1000·t: [cos(1000 t f_i), sin(1000 t f_i)], f_i = exp(-ln(10000)·i/half) (float32 as
// torch).
void timestep_embedding(const float* t, int64_t B, int64_t dim, float* out) {
  const int64_t half = dim / 2;
  const float neg_log = -(float)std::log(10000.0);
  for (int64_t b = 0; b < B; ++b) {
    const float tt = t[b] * 1000.f;
    for (int64_t i = 0; i < half; ++i) {
      const float f = std::exp(neg_log * (float)i / (float)half);
      const float arg = tt * f;
      out[b * dim + i] = std::cos(arg);
      out[b * dim + half + i] = std::sin(arg);
    }
  }
}

}  // namespace

LayeredConfig parse_layered_config(const std::string& text) {
  const json::Value root = json::parse(text.data(), text.size(), "config.json");
  const std::string w = "config";
  const json::Value& fmt = field(root, "format", w);
  if (fmt.kind != json::Value::Kind::String || fmt.string != "native-diffusion-layered")
    fail_expected(code::kUnsupported, "\"native-diffusion-layered\"", "config.format",
                  fmt.kind == json::Value::Kind::String ? "\"" + fmt.string + "\"" : "another type");
  const json::Value& pred = field(root, "prediction_type", w);
  if (pred.kind != json::Value::Kind::String || pred.string != "v")
    fail_expected(code::kUnsupported, "\"v\"", "config.prediction_type",
                  pred.kind == json::Value::Kind::String ? pred.string : "another type");
  LayeredConfig c;
  c.scales = int_list(root, "scales", w, 4, 4096);
  c.scale_channels = int_list(root, "scale_channels", w, 1, 4096);
  if (c.scales.empty() || c.scales.size() != c.scale_channels.size())
    fail_expected(code::kInvalidFile, "one channel count per scale", "config.scale_channels",
                  std::to_string(c.scale_channels.size()));
  for (size_t i = 1; i < c.scales.size(); ++i)
    if (c.scales[i] != 2 * c.scales[i - 1])
      fail_expected(code::kInvalidFile, "scales doubling from the lowest", "config.scales",
                    std::to_string(c.scales[i]));
  if (c.scales[0] % 4)
    fail_expected(code::kInvalidFile, "a lowest scale divisible by 4", "config.scales[0]", std::to_string(c.scales[0]));
  c.in_channels = int_field(root, "in_channels", w, 1, 64);
  std::vector<int64_t> inner = int_list(root, "inner_channels", w, 1, 4096);
  if (inner.size() != 2)
    fail_expected(code::kInvalidFile, "2 values", "config.inner_channels", std::to_string(inner.size()));
  c.inner1 = inner[0], c.inner2 = inner[1];
  c.head_dim = int_field(root, "head_dim", w, 1, 1024);
  c.groups = int_field(root, "groups", w, 1, 1024);
  c.time_embed_dim = int_field(root, "time_embed_dim", w, 1, 65536);
  c.time_freq_dim = int_field(root, "time_freq_dim", w, 2, 65536);
  c.context_dim = int_field(root, "context_dim", w, 1, 65536);
  for (int64_t ch : {c.inner1, c.inner2}) {
    if (ch % layered::attention_heads(ch, c.head_dim))
      fail_expected(code::kInvalidFile, "channels divisible by their head count (floor(channels / head_dim))",
                    "config.inner_channels", std::to_string(ch));
  }
  for (int64_t ch : c.scale_channels)
    if (ch % c.groups)
      fail_expected(code::kInvalidFile, "channels divisible by groups", "config.scale_channels", std::to_string(ch));
  const json::Value& t = field(root, "text", w);
  c.text.vocab_size = int_field(t, "vocab_size", "config.text", 1, 1 << 20);
  c.text.width = int_field(t, "width", "config.text", 1, 65536);
  c.text.layers = int_field(t, "layers", "config.text", 0, 1024);
  c.text.heads = int_field(t, "heads", "config.text", 1, 1024);
  c.text.max_positions = int_field(t, "max_positions", "config.text", 1, 65536);
  c.text.mlp_ratio = int_field(t, "mlp_ratio", "config.text", 1, 64);
  if (c.text.width % c.text.heads)
    fail_expected(code::kInvalidFile, "a width divisible by heads", "config.text.width", std::to_string(c.text.width));
  if (c.text.width != c.context_dim)
    fail_expected(code::kInvalidFile, "context_dim = text.width", "config.context_dim", std::to_string(c.context_dim));
  c.vocab = int_list(root, "vocab", w, 0, (1 << 30));
  if ((int64_t)c.vocab.size() + 1 != c.text.vocab_size)
    fail_expected(code::kInvalidFile, std::to_string(c.text.vocab_size - 1) + " ids", "config.vocab",
                  std::to_string(c.vocab.size()));
  return c;
}

LayeredUNet::LayeredUNet(std::shared_ptr<WeightStore> weights, LayeredConfig config)
    : w_(std::move(weights)), cfg_(std::move(config)), be_(default_backend()) {
  // Fail at load, not at the first call, when the checkpoint is not this architecture.
  w_->get(std::string(kUnet) + "conv_in.0.weight", Shape{cfg_.scale_channels[0], cfg_.in_channels, 3, 3});
  w_->get(std::string(kText) + "embeddings.token_embedding.weight", Shape{cfg_.text.vocab_size, cfg_.text.width});
}

Buffer LayeredUNet::encode_text(ThreadPool& pool, const CancelFlag& cancel, const int32_t* ids, int64_t B,
                                int64_t n) const {
  const LayeredTextConfig& tc = cfg_.text;
  if (B < 1) fail_expected(code::kInvalidArgument, "at least one prompt", "ids", std::to_string(B));
  if (n < 1 || n > tc.max_positions)
    fail_expected(code::kInvalidArgument, "1 to " + std::to_string(tc.max_positions) + " tokens", "ids",
                  std::to_string(n));
  const int64_t W = tc.width, heads = tc.heads, hd = W / heads, M = B * n;
  layered::Net net{be_, pool, *w_, 1, hd};
  const std::string p = kText;
  const std::vector<float>& tok = w_->f32(p + "embeddings.token_embedding.weight");
  const std::vector<float>& pos = w_->f32(p + "embeddings.position_embedding.weight");
  if ((int64_t)tok.size() != tc.vocab_size * W || (int64_t)pos.size() != tc.max_positions * W)
    fail(code::kShapeMismatch, "Text embedding tables do not match config.text");
  Buffer x(Shape{B, n, W});
  for (int64_t i = 0; i < M; ++i) {
    int64_t row = 0;  // unknown CLIP id
    for (size_t v = 0; v < cfg_.vocab.size(); ++v)
      if (cfg_.vocab[v] == ids[i]) row = (int64_t)v + 1;
    for (int64_t c = 0; c < W; ++c) x.data()[i * W + c] = tok[row * W + c] + pos[(i % n) * W + c];  // [B, n, W]
  }
  Buffer h(Shape{B, n, W}), scores(Shape{n, n}), o(Shape{B, n, W});
  const float scale = 1.f / std::sqrt((float)hd);
  for (int64_t l = 0; l < tc.layers; ++l) {
    cancel.check();
    const std::string lp = p + "encoder.layers." + std::to_string(l);
    be_.layer_norm(pool, x.data(), h.data(), M, W, w_->f32(lp + ".layer_norm1.weight").data(),
                    w_->f32(lp + ".layer_norm1.bias").data(), 1e-5f);
    Buffer q = layered::linear(net, lp + ".self_attn.q_proj", h.data(), M, W, W);  // [B, n, W]
    Buffer k = layered::linear(net, lp + ".self_attn.k_proj", h.data(), M, W, W);
    Buffer v = layered::linear(net, lp + ".self_attn.v_proj", h.data(), M, W, W);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t hh = 0; hh < heads; ++hh) {  // causal attention: n is at most 77, a plain GEMM per head
        const int64_t off = b * n * W + hh * hd;
        be_.gemm_f32(pool, false, true, n, n, hd, scale, q.data() + off, W, k.data() + off, W, 0.f, scores.data(), n);
        for (int64_t r = 0; r < n; ++r)
          for (int64_t c = r + 1; c < n; ++c) scores.data()[r * n + c] = -INFINITY;
        be_.softmax_rows(pool, scores.data(), n, n);
        be_.gemm_f32(pool, false, false, n, hd, n, 1.f, scores.data(), n, v.data() + off, W, 0.f, o.data() + off, W);
      }
    Buffer a = layered::linear(net, lp + ".self_attn.out_proj", o.data(), M, W, W);  // [B, n, W]
    be_.add(pool, x.data(), a.data(), x.data(), x.numel());
    be_.layer_norm(pool, x.data(), h.data(), M, W, w_->f32(lp + ".layer_norm2.weight").data(),
                    w_->f32(lp + ".layer_norm2.bias").data(), 1e-5f);
    Buffer f = layered::linear(net, lp + ".mlp.fc1", h.data(), M, W, W * tc.mlp_ratio);  // [B, n, rW]
    be_.quick_gelu(pool, f.data(), f.numel());
    a = layered::linear(net, lp + ".mlp.fc2", f.data(), M, W * tc.mlp_ratio, W);  // [B, n, W]
    be_.add(pool, x.data(), a.data(), x.data(), x.numel());
  }
  be_.layer_norm(pool, x.data(), x.data(), M, W, w_->f32(p + "final_layer_norm.weight").data(),
                  w_->f32(p + "final_layer_norm.bias").data(), 1e-5f);
  return x;
}

std::vector<Buffer> LayeredUNet::forward(ThreadPool& pool, const CancelFlag& cancel,
                                         const std::vector<const float*>& zs, int64_t B, int64_t H, int64_t W,
                                         const float* t, const float* context, int64_t n_ctx, const float* self_scales,
                                         std::vector<layered::Capture>* capture) const {
  const LayeredConfig& c = cfg_;
  const size_t S = c.scales.size();
  const int64_t top = c.scales.back(), ratio = top / c.scales[0], unit = ratio * 4;
  if (zs.size() != S)
    fail_expected(code::kInvalidArgument, std::to_string(S) + " inputs (one per scale)", "z",
                  std::to_string(zs.size()));
  if (B < 1 || B > 4096) fail_expected(code::kInvalidArgument, "a batch of 1 to 4096", "batch", std::to_string(B));
  if (H < unit || H % unit || H > 8192)
    fail_expected(code::kInvalidArgument, "a multiple of " + std::to_string(unit), "height", std::to_string(H));
  if (W < unit || W % unit || W > 8192)
    fail_expected(code::kInvalidArgument, "a multiple of " + std::to_string(unit), "width", std::to_string(W));
  if (n_ctx < 1 || n_ctx > 4096)
    fail_expected(code::kInvalidArgument, "1 to 4096 context tokens", "context", std::to_string(n_ctx));
  layered::Net net{be_, pool, *w_, (int)c.groups, c.head_dim};
  const std::string p = kUnet;
  // Default softmax scales 1/sqrt(d) per self-attention layer (input_blocks.1.1 and output_blocks.0.1 at
  // inner1 channels, middle_block.1 at inner2).
  const int64_t layer_channels[3] = {c.inner1, c.inner2, c.inner1};
  auto ss = [&](int i) {
    return self_scales ? self_scales[i]
                       : 1.f / std::sqrt((float)layered::attention_head_size(layer_channels[i], c.head_dim));
  };

  // time embedding: Linear, SiLU, Linear; every ResBlock applies SiLU first, so keep SiLU(emb).
  Buffer freq(Shape{B, c.time_freq_dim});
  timestep_embedding(t, B, c.time_freq_dim, freq.data());  // [B, F]
  Buffer emb = layered::linear(net, p + "time_embed.0", freq.data(), B, c.time_freq_dim, c.time_embed_dim);
  be_.silu(pool, emb.data(), emb.numel());
  emb = layered::linear(net, p + "time_embed.2", emb.data(), B, c.time_embed_dim, c.time_embed_dim);  // [B, E]
  be_.silu(pool, emb.data(), emb.numel());

  std::vector<Buffer> skips;
  for (size_t i = 0; i < S; ++i) {
    const int64_t k = top / c.scales[i];
    Buffer z(Shape{B, c.in_channels, H / k, W / k});
    std::memcpy(z.data(), zs[i], sizeof(float) * z.numel());
    skips.push_back(
        layered::conv(net, p + "conv_in." + std::to_string(i), z, c.scale_channels[i], 3, 1, 1));  // [B, c_i, H_i, W_i]
  }
  const int64_t c0 = c.scale_channels[0];
  cancel.check();
  Buffer a = layered::res_block(net, p + "input_blocks.0.0", skips[0], emb, c0);  // [B, c0, s0, s0]
  Buffer h = layered::conv(net, p + "down.0.op", a, c0, 3, 2, 1);                 // [B, c0, s0/2]
  cancel.check();
  h = layered::res_block(net, p + "input_blocks.1.0", h, emb, c.inner1);          // [B, c1, s0/2]
  cancel.check();
  Buffer b =
      layered::spatial_transformer(net, p + "input_blocks.1.1", h, context, n_ctx, c.context_dim, ss(0), capture, p);
  cancel.check();
  h = layered::conv(net, p + "down.1.op", b, c.inner1, 3, 2, 1);        // [B, c1, s0/4]
  cancel.check();
  h = layered::res_block(net, p + "middle_block.0", h, emb, c.inner2);  // [B, c2, s0/4]
  cancel.check();
  h = layered::spatial_transformer(net, p + "middle_block.1", h, context, n_ctx, c.context_dim, ss(1), capture, p);
  cancel.check();
  h = layered::res_block(net, p + "middle_block.2", h, emb, c.inner2);
  cancel.check();
  h = layered::upsample(net, p + "up.0", h, c.inner2);                                                  // [B, c2, s0/2]
  cancel.check();
  h = layered::res_block(net, p + "output_blocks.0.0", layered::concat_channels(h, b), emb, c.inner1);  // [B, c1, s0/2]
  cancel.check();
  h = layered::spatial_transformer(net, p + "output_blocks.0.1", h, context, n_ctx, c.context_dim, ss(2), capture, p);
  cancel.check();
  h = layered::upsample(net, p + "up.1", h, c.inner1);                                            // [B, c1, s0]
  cancel.check();
  h = layered::res_block(net, p + "output_blocks.1.0", layered::concat_channels(h, a), emb, c0);  // [B, c0, s0]
  std::vector<Buffer> outs;
  cancel.check();
  outs.push_back(layered::out_head(net, p + "out.0", h, c.in_channels));  // [B, 3, s0]
  for (size_t i = 1; i < S; ++i) {
    const std::string si = std::to_string(i);
    h = layered::upsample(net, p + "up." + std::to_string(i + 1), h, c.scale_channels[i]);  // [B, c_i, s_i]
    h = layered::res_block(net, p + "output_blocks." + std::to_string(i + 1) + ".0",
                           layered::concat_channels(h, skips[i]), emb, c.scale_channels[i]);  // [B, c_i, s_i]
    outs.push_back(layered::out_head(net, p + "out." + si, h, c.in_channels));                // [B, 3, s_i]
  }
  return outs;
}

}  // namespace nd::models
