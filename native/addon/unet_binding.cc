// JS class `UNet`: new UNet(weights, config, { threads }); forward(...) -> Promise, run off the
// main thread through the one call pattern (addon/model_call.h: the model's queue, the process compute pool,
// options.cancel: an Int32Array whose element 0 set to non-zero stops the forward between blocks with
// ERR_ABORTED); dispose(). Inputs are copied on the main thread so the JS arrays may change or be
// collected while the worker runs; a running forward keeps the model alive past dispose().
#include "addon/unet_binding.h"

#include <napi.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "addon/convert.h"
#include "addon/model_call.h"
#include "addon/registry.h"
#include "models/unet.h"

namespace nd::addon {
namespace {

[[noreturn]] void expected(const std::string& what, const std::string& name, const std::string& got) {
  fail_expected(code::kInvalidArgument, what, name, got);
}

std::vector<bool> bool_array_from_js(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) expected("an array of booleans", key, v.IsUndefined() ? "undefined" : "another type");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<bool> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsBoolean()) expected("a boolean", std::string(key) + "[" + std::to_string(i) + "]", "another type");
    out.push_back(e.As<Napi::Boolean>().Value());
  }
  return out;
}

// The one place that reads a JS UNetConfig (lib/loading/types.ts).
UNetConfig unet_config_from_js(const Napi::Value& v) {
  if (!v.IsObject()) expected("a UNetConfig object", "config", "another type");
  Napi::Object o = v.As<Napi::Object>();
  UNetConfig c;
  c.in_channels = int_from_js(o, "inChannels", 1, 64);
  c.out_channels = int_from_js(o, "outChannels", 1, 64);
  c.model_channels = int_from_js(o, "modelChannels", 1, 4096);
  c.channel_mult = int_array_from_js(o, "channelMult");
  c.num_res_blocks = int_from_js(o, "numResBlocks", 1, 16);
  c.attention_levels = bool_array_from_js(o, "attentionLevels");
  c.num_heads = int_array_from_js(o, "numHeads");
  c.mid_heads = int_from_js(o, "midHeads", 1, 1024);
  // transformerDepth: one depth for every level (SD 1/2) or one per level (SDXL: [0, 2, 10]).
  const size_t levels = c.channel_mult.size();
  Napi::Value depth = o.Get("transformerDepth");
  if (depth.IsArray()) {
    c.transformer_depth = int_array_from_js(o, "transformerDepth");
  } else {
    c.transformer_depth.assign(levels, int_from_js(o, "transformerDepth", 1, 16));
  }
  c.mid_transformer_depth = o.Get("transformerDepthMiddle").IsUndefined()
                                ? (c.transformer_depth.empty() ? 1 : std::max<int64_t>(1, c.transformer_depth.back()))
                                : int_from_js(o, "transformerDepthMiddle", 1, 16);
  c.adm_in_channels = o.Get("admInChannels").IsUndefined() ? 0 : int_from_js(o, "admInChannels", 0, 65536);
  c.context_dim = int_from_js(o, "contextDim", 1, 16384);
  c.use_linear_projection = bool_from_js(o, "useLinearProjection", false);
  c.upcast_attention = bool_from_js(o, "upcastAttention", false);
  c.norm_groups = int_from_js(o, "normGroups", 1, 1024);
  c.validate();
  return c;
}

std::vector<int64_t> shape_from_js(const Napi::Value& v, const char* name, size_t rank) {
  const std::string what = "an array of " + std::to_string(rank) + " positive integers";
  if (!v.IsArray() || v.As<Napi::Array>().Length() != rank)
    expected(what, name, v.IsArray() ? "an array of another length" : "another type");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < rank; ++i) {
    Napi::Value e = a.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != std::floor(d) || d < 1 || d > (double)(1 << 30))
      expected(what, name, e.IsNumber() ? std::to_string(d) : "a non-number");
    out.push_back((int64_t)d);
  }
  return out;
}

std::vector<double> timesteps_from_js(const Napi::Value& v) {
  std::vector<double> out;
  if (v.IsNumber()) {
    out.push_back(v.As<Napi::Number>().DoubleValue());
  } else if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    Napi::Float64Array a = v.As<Napi::Float64Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
  } else if (v.IsArray()) {
    Napi::Array a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value e = a.Get(i);
      if (!e.IsNumber()) expected("a number", "timesteps[" + std::to_string(i) + "]", "a non-number");
      out.push_back(e.As<Napi::Number>().DoubleValue());
    }
  } else {
    expected("a Float64Array, number[] or number", "timesteps", "another type");
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i]))
      expected("a finite number", "timesteps[" + std::to_string(i) + "]", std::to_string(out[i]));
  return out;
}

UNetForwardOptions options_from_js(const Napi::Value& v) {
  UNetForwardOptions opt;
  if (v.IsUndefined() || v.IsNull()) return opt;
  if (!v.IsObject()) expected("an options object", "options", "another type");
  Napi::Object o = v.As<Napi::Object>();
  opt.capture_attention = bool_from_js(o, "captureAttention", false);
  Napi::Value n = o.Get("nativeLatentSize");
  if (!n.IsUndefined() && !n.IsNull()) {
    if (!n.IsObject()) expected("an object { h, w }", "options.nativeLatentSize", "another type");
    opt.native_h = int_from_js(n.As<Napi::Object>(), "h", 1, 1 << 20);
    opt.native_w = int_from_js(n.As<Napi::Object>(), "w", 1, 1 << 20);
  }
  return opt;
}

// The JS result of a forward: the output, plus the captured attention with S-CFG.
Napi::Value forward_result(Napi::Env env, const std::vector<float>& output,
                           const std::vector<nn::CapturedAttention>* captured) {
  Napi::Float32Array out = f32_to_js(env, output.data(), output.size());
  if (!captured) return out;
  Napi::Object r = Napi::Object::New(env);
  r.Set("output", out);
  Napi::Array list = Napi::Array::New(env, captured->size());
  const std::string prefix = "model.diffusion_model.";
  for (size_t i = 0; i < captured->size(); ++i) {
    const nn::CapturedAttention& c = (*captured)[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", c.name.compare(0, prefix.size(), prefix) == 0 ? c.name.substr(prefix.size()) : c.name);
    e.Set("kind", c.cross ? "cross" : "self");
    e.Set("h", (double)c.h);
    e.Set("w", (double)c.w);
    e.Set("probs", f32_to_js(env, c.probs.data(), c.probs.size()));
    list.Set((uint32_t)i, e);
  }
  r.Set("attention", list);
  return r;
}

// The copied inputs of one forward (they outlive the JS call).
struct ForwardCall {
  std::vector<float> sample, context, added;
  std::vector<double> timesteps;
  UNetInputs in;
  UNetForwardOptions opt;
  std::vector<float> output;
  std::vector<nn::CapturedAttention> captured;
};

class UNetWrap : public Napi::ObjectWrap<UNetWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function f =
        DefineClass(env, "UNet",
                    {InstanceMethod("forward", &UNetWrap::Forward), InstanceMethod("dispose", &UNetWrap::Dispose),
                     InstanceMethod("stats", &UNetWrap::Stats)});
    exports.Set("UNet", f);
  }

  explicit UNetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UNetWrap>(info) {
    guarded(info.Env(), [&] {
      std::shared_ptr<WeightStore> weights = weights_from_js(info[0]);
      UNetConfig config = unet_config_from_js(info[1]);
      int threads = 0;
      if (info.Length() > 2 && info[2].IsObject()) {
        Napi::Object o = info[2].As<Napi::Object>();
        if (!o.Get("threads").IsUndefined()) threads = (int)int_from_js(o, "threads", 0, 1024);
      } else if (info.Length() > 2 && !info[2].IsUndefined()) {
        expected("an options object { threads }", "options", "another type");
      }
      slot_.open(std::make_shared<UNet>(std::move(weights), config), threads);
      info.This().As<Napi::Object>().TypeTag(&kUNetTag);
    });
  }

  static constexpr napi_type_tag kUNetTag = {0x6e642d756e657431ull, 0x9b1f3c5a7d2e4f60ull};  // "nd-unet1"
  std::shared_ptr<UNet> model() const { return slot_.model; }

 private:
  // forward(sample, [B, C, H, W], timesteps, context, [B, T, D], options?)
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_call(env, [&]() -> Napi::Value {
      if (slot_.disposed()) fail(code::kDisposed, "This UNet was disposed");
      std::shared_ptr<UNet> model = slot_.model;
      const F32View sample = f32_from_js(info[0], "sample");
      const std::vector<int64_t> shape = shape_from_js(info[1], "sample shape", 4);
      std::vector<double> timesteps = timesteps_from_js(info[2]);
      const F32View context = f32_from_js(info[3], "context");
      const std::vector<int64_t> cshape = shape_from_js(info[4], "context shape", 3);
      const UNetForwardOptions opt = options_from_js(info[5]);
      // Products in double: exact below 2^53, and anything larger cannot match a typed array's length.
      const auto count = [](const std::vector<int64_t>& s) {
        double n = 1;
        for (int64_t d : s) n *= (double)d;
        return n;
      };
      const auto fmt = [](double n) { return n < 9e15 ? std::to_string((int64_t)n) : std::to_string(n); };
      if ((double)sample.length != count(shape))
        expected(fmt(count(shape)) + " values (shape " + shape_str(shape) + ")", "sample",
                 std::to_string(sample.length) + " values");
      if ((double)context.length != count(cshape))
        expected(fmt(count(cshape)) + " values (shape " + shape_str(cshape) + ")", "context",
                 std::to_string(context.length) + " values");
      auto call = std::make_shared<ForwardCall>();
      call->sample.assign(sample.data, sample.data + sample.length);
      call->context.assign(context.data, context.data + context.length);
      call->timesteps = std::move(timesteps);
      call->opt = opt;
      // options.cancel: the call's cancellation flag; options.added: the added conditioning [B, admInChannels].
      const Napi::Object options = info[5].IsObject() ? info[5].As<Napi::Object>() : Napi::Object::New(env);
      if (!options.Get("added").IsUndefined()) {
        const F32View added = f32_from_js(options.Get("added"), "options.added");
        call->added.assign(added.data, added.data + added.length);
      }
      UNetInputs& in = call->in;
      in.B = shape[0], in.C = shape[1], in.H = shape[2], in.W = shape[3];
      in.context_batch = cshape[0], in.T = cshape[1], in.D = cshape[2];
      in.num_timesteps = (int64_t)call->timesteps.size();
      in.sample = call->sample.data();
      in.context = call->context.data();
      in.timesteps = call->timesteps.data();
      in.added = call->added.empty() ? nullptr : call->added.data();
      in.added_dim = (int64_t)call->added.size();
      model->check_inputs(in);
      return queue_call(
          env, slot_, options.Get("cancel"),
          [call, model](ThreadPool& pool, const CancelFlag& cancel) {
            call->output.resize((size_t)(call->in.B * model->config().out_channels * call->in.H * call->in.W));
            model->forward(pool, cancel, call->in, call->opt, call->output.data(),
                           call->opt.capture_attention ? &call->captured : nullptr);
          },
          [call](Napi::Env e) {
            return forward_result(e, call->output, call->opt.capture_attention ? &call->captured : nullptr);
          });
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_.dispose();  // a running forward holds its own reference
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("disposed", slot_.disposed());
    o.Set("peakActivationBytes", slot_.model ? (double)slot_.model->last_peak_activation_bytes() : 0.0);
    return o;
  }

  ModelSlot<UNet> slot_;
};

// unetConfig(unet): the config the native model runs with, as a JS UNetConfig (checks the
// one-place conversion and the type-tagged lookup other bindings use).
Napi::Value UNetConfigOf(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const UNetConfig& c = unet_from_js(info[0], "unet")->config();
    const auto ints = [&](const std::vector<int64_t>& v) {
      Napi::Array a = Napi::Array::New(env, v.size());
      for (size_t i = 0; i < v.size(); ++i) a.Set((uint32_t)i, (double)v[i]);
      return a;
    };
    Napi::Object o = Napi::Object::New(env);
    o.Set("inChannels", (double)c.in_channels);
    o.Set("outChannels", (double)c.out_channels);
    o.Set("modelChannels", (double)c.model_channels);
    o.Set("channelMult", ints(c.channel_mult));
    o.Set("numResBlocks", (double)c.num_res_blocks);
    Napi::Array levels = Napi::Array::New(env, c.attention_levels.size());
    for (size_t i = 0; i < c.attention_levels.size(); ++i) levels.Set((uint32_t)i, (bool)c.attention_levels[i]);
    o.Set("attentionLevels", levels);
    o.Set("numHeads", ints(c.num_heads));
    o.Set("midHeads", (double)c.mid_heads);
    const bool uniform = std::all_of(c.transformer_depth.begin(), c.transformer_depth.end(),
                                     [&](int64_t d) { return d == c.transformer_depth.front(); });
    if (uniform && !c.transformer_depth.empty())
      o.Set("transformerDepth", (double)c.transformer_depth.front());
    else
      o.Set("transformerDepth", ints(c.transformer_depth));
    if (c.mid_transformer_depth != (c.transformer_depth.empty() ? 1 : c.transformer_depth.back()))
      o.Set("transformerDepthMiddle", (double)c.mid_transformer_depth);
    if (c.adm_in_channels > 0) o.Set("admInChannels", (double)c.adm_in_channels);
    o.Set("contextDim", (double)c.context_dim);
    o.Set("useLinearProjection", c.use_linear_projection);
    o.Set("upcastAttention", c.upcast_attention);
    o.Set("normGroups", (double)c.norm_groups);
    return o;
  });
}

void init(Napi::Env env, Napi::Object exports) {
  UNetWrap::Init(env, exports);
  exports.Set("unetConfig", Napi::Function::New(env, UNetConfigOf));
}

}  // namespace

std::shared_ptr<UNet> unet_from_js(const Napi::Value& v, const char* name) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&UNetWrap::kUNetTag))
    expected("a UNet object", name, v.IsObject() ? "another object" : "a non-object");
  std::shared_ptr<UNet> model = UNetWrap::Unwrap(v.As<Napi::Object>())->model();
  if (!model) fail(code::kDisposed, std::string("The UNet passed as ") + name + " was disposed");
  return model;
}
}  // namespace nd::addon

ND_REGISTER_BINDING("unet", nd::addon::init);
