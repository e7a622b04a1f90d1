#include "models/layered_unet.h"

#include <cmath>
#include <cstring>

#include "core/arena.h"
#include "core/json.h"
#include "nn/profile.h"

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
    if (ch % attention_heads(ch, c.head_dim))
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
  const LayeredConfig& c = cfg_;
  const WeightStore& w = *w_;
  const std::string p = kUnet;
  // Every weight is looked up and shape-checked here, so a checkpoint of another architecture fails at load.
  TextEncoderConfig text;
  text.kind = TextEncoderConfig::Kind::kClip;  // HF CLIPTextModel names under cond_stage_model.transformer.text_model.
  text.hidden = c.text.width;
  text.layers = c.text.layers;
  text.heads = c.text.heads;
  text.intermediate = c.text.width * c.text.mlp_ratio;
  text.vocab_size = c.text.vocab_size;
  text.max_positions = c.text.max_positions;
  text.activation = TextEncoderConfig::Activation::kQuickGelu;
  text.default_layers_to_run = c.text.layers;
  text.pad_token = 0;
  text_ = std::make_unique<ClipTextEncoder>(w_, text);

  const int64_t E = c.time_embed_dim, c0 = c.scale_channels[0];
  time_embed_0_ = nn::Linear::load(w, p + "time_embed.0", E, c.time_freq_dim, true);
  time_embed_2_ = nn::Linear::load(w, p + "time_embed.2", E, E, true);
  for (size_t i = 0; i < c.scales.size(); ++i)
    conv_in_.push_back(nn::Conv2d::load(w, p + "conv_in." + std::to_string(i), c.scale_channels[i], c.in_channels, 3));
  const auto res = [&](const std::string& name, int64_t in, int64_t out) {
    return nn::ResBlock(w, p + name, nn::ResBlockConfig{in, out, E, c.groups});
  };
  const auto transformer = [&](const std::string& name, int64_t C) {
    nn::TransformerConfig t;
    t.channels = C;
    t.heads = attention_heads(C, c.head_dim);
    t.depth = 1;
    t.context_dim = c.context_dim;
    t.groups = c.groups;
    return nn::SpatialTransformer(w, p + name, t);
  };
  in0_ = res("input_blocks.0.0", c0, c0);
  down0_ = nn::Downsample(w, p + "down.0", c0);
  in1_ = res("input_blocks.1.0", c0, c.inner1);
  in1_attn_ = transformer("input_blocks.1.1", c.inner1);
  down1_ = nn::Downsample(w, p + "down.1", c.inner1);
  mid0_ = res("middle_block.0", c.inner1, c.inner2);
  mid_attn_ = transformer("middle_block.1", c.inner2);
  mid2_ = res("middle_block.2", c.inner2, c.inner2);
  up_.push_back(nn::Upsample(w, p + "up.0", c.inner2));
  out_res_.push_back(res("output_blocks.0.0", c.inner2 + c.inner1, c.inner1));
  out0_attn_ = transformer("output_blocks.0.1", c.inner1);
  up_.push_back(nn::Upsample(w, p + "up.1", c.inner1));
  out_res_.push_back(res("output_blocks.1.0", c.inner1 + c0, c0));
  for (size_t i = 1; i < c.scales.size(); ++i) {
    const int64_t ci = c.scale_channels[i];
    up_.push_back(nn::Upsample(w, p + "up." + std::to_string(i + 1), c.scale_channels[i - 1], ci));
    out_res_.push_back(res("output_blocks." + std::to_string(i + 1) + ".0", 2 * ci, ci));
  }
  for (size_t i = 0; i < c.scales.size(); ++i) {
    const std::string o = p + "out." + std::to_string(i);
    out_.push_back(OutHead{nn::GroupNorm::load(w, o + ".norm", c.scale_channels[i], (int)c.groups, 1e-5f),
                           nn::Conv2d::load(w, o + ".conv", c.in_channels, c.scale_channels[i], 3)});
  }
}

Buffer LayeredUNet::encode_text(ThreadPool& pool, const CancelFlag& cancel, const int32_t* ids, int64_t B,
                                int64_t n) const {
  const LayeredTextConfig& tc = cfg_.text;
  if (B < 1) fail_expected(code::kInvalidArgument, "at least one prompt", "ids", std::to_string(B));
  if (n < 1 || n > tc.max_positions)
    fail_expected(code::kInvalidArgument, "1 to " + std::to_string(tc.max_positions) + " tokens", "ids",
                  std::to_string(n));
  // CLIP ids -> rows of our token table: row v + 1 for vocab[v], row 0 for any other id.
  std::vector<int32_t> rows((size_t)(B * n), 0);
  for (int64_t i = 0; i < B * n; ++i)
    for (size_t v = 0; v < cfg_.vocab.size(); ++v)
      if (cfg_.vocab[v] == ids[i]) rows[(size_t)i] = (int32_t)v + 1;
  return text_->encode(pool, cancel, rows.data(), B, n, TextEncodeOptions{});  // [B, n, width], final layer norm
}

std::vector<Buffer> LayeredUNet::forward(ThreadPool& pool, const CancelFlag& cancel,
                                         const std::vector<const float*>& zs, int64_t B, int64_t H, int64_t W,
                                         const float* t, const float* context, int64_t n_ctx, const float* self_scales,
                                         std::vector<nn::CapturedAttention>* capture) const {
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
  prof::Scope forward_scope(prof::Op::Forward);
  Arena arena;
  Compute cx{be_, pool, arena, cancel};
  const auto act = [&](int64_t C, int64_t h, int64_t w) {
    return nn::Act{cx.alloc((size_t)(B * C * h * w)), B, C, h, w};
  };
  // Softmax scales of the self-attention layers (input_blocks.1.1 and output_blocks.0.1 at inner1 channels,
  // middle_block.1 at inner2): given (entropy scaling) or 1/sqrt(head size).
  const int64_t layer_channels[3] = {c.inner1, c.inner2, c.inner1};
  const auto attention = [&](int i) {
    nn::AttentionCall call;
    call.self_scale =
        self_scales ? self_scales[i] : 1.f / std::sqrt((float)attention_head_size(layer_channels[i], c.head_dim));
    call.capture = capture;
    return call;
  };

  // time embedding of 1000·t: Linear, SiLU, Linear; every ResBlock applies SiLU first, so keep SiLU(emb).
  const int64_t F = c.time_freq_dim, E = c.time_embed_dim;
  std::vector<double> steps((size_t)B);
  for (int64_t b = 0; b < B; ++b) steps[(size_t)b] = (double)(t[b] * 1000.f);
  float* freq = cx.alloc((size_t)(B * F));  // [B, F]
  nn::timestep_embedding(steps.data(), B, F, freq);
  float* e1 = cx.alloc((size_t)(B * E));  // [B, E]
  time_embed_0_.forward(cx, freq, B, e1);
  ND_TIMED(Elementwise, be_.silu(pool, e1, B * E));
  float* emb = cx.alloc((size_t)(B * E));  // [B, E]
  time_embed_2_.forward(cx, e1, B, emb);
  ND_TIMED(Elementwise, be_.silu(pool, emb, B * E));

  std::vector<nn::Act> skips;  // conv_in.i: [B, c_i, H_i, W_i]
  for (size_t i = 0; i < S; ++i) {
    const int64_t k = top / c.scales[i];
    skips.push_back(act(c.scale_channels[i], H / k, W / k));
    conv_in_[i].forward(cx, zs[i], B, H / k, W / k, skips.back().data);
  }
  const int64_t c0 = c.scale_channels[0];
  const nn::Act& x0 = skips[0];
  nn::Act a = act(c0, x0.H, x0.W);  // [B, c0, s0, s0]
  in0_.forward(cx, x0, emb, a.data);
  cx.check_cancel();
  nn::Act d = act(c0, a.H / 2, a.W / 2);  // [B, c0, s0/2]
  down0_.forward(cx, a, d.data);
  nn::Act b = act(c.inner1, d.H, d.W);  // [B, c1, s0/2]
  in1_.forward(cx, d, emb, b.data);
  in1_attn_.forward(cx, b, context, n_ctx, attention(0));
  cx.check_cancel();
  nn::Act d1 = act(c.inner1, b.H / 2, b.W / 2);  // [B, c1, s0/4]
  down1_.forward(cx, b, d1.data);
  nn::Act m = act(c.inner2, d1.H, d1.W);  // [B, c2, s0/4]
  mid0_.forward(cx, d1, emb, m.data);
  mid_attn_.forward(cx, m, context, n_ctx, attention(1));
  nn::Act m2 = act(c.inner2, m.H, m.W);
  mid2_.forward(cx, m, emb, m2.data);
  cx.check_cancel();
  nn::Act u = act(c.inner2, b.H, b.W);  // [B, c2, s0/2]
  up_[0].forward(cx, m2, b.H, b.W, u.data);
  nn::Act cat = act(c.inner2 + c.inner1, b.H, b.W);
  nn::concat_channels(cx, u, b, cat.data);
  nn::Act h = act(c.inner1, b.H, b.W);  // [B, c1, s0/2]
  out_res_[0].forward(cx, cat, emb, h.data);
  out0_attn_.forward(cx, h, context, n_ctx, attention(2));
  cx.check_cancel();

  std::vector<Buffer> outs;
  const auto head = [&](size_t i, const nn::Act& x) {  // out.i: [B, 3, s_i, s_i]
    Buffer out({B, c.in_channels, x.H, x.W});
    const Arena::Mark mark = arena.mark();
    float* n = cx.alloc((size_t)x.numel());
    out_[i].norm.forward(cx, x.data, n, B, x.H * x.W, /*silu=*/true);
    out_[i].conv.forward(cx, n, B, x.H, x.W, out.data());
    arena.reset(mark);
    outs.push_back(std::move(out));
  };
  for (size_t i = 0; i < S; ++i) {
    // up.(i+1) to scale i, concatenated with conv_in.i's skip, output_blocks.(i+1).0, then the head out.i.
    const nn::Act& skip = i == 0 ? a : skips[i];
    const int64_t ci = c.scale_channels[i];
    nn::Act ui = act(i == 0 ? c.inner1 : ci, skip.H, skip.W);
    up_[i + 1].forward(cx, h, skip.H, skip.W, ui.data);
    nn::Act cati = act(ui.C + skip.C, skip.H, skip.W);
    nn::concat_channels(cx, ui, skip, cati.data);
    nn::Act oi = act(ci, skip.H, skip.W);  // [B, c_i, s_i]
    out_res_[i + 1].forward(cx, cati, emb, oi.data);
    head(i, oi);
    h = oi;
    cx.check_cancel();
  }
  return outs;
}

}  // namespace nd::models
