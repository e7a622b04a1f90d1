// JS class LayeredUNet(weights, configJson, { threads }) over models/layered_unet:
//   encodeText(ids: Int32Array, batch) -> Promise<Float32Array>            context [batch, n, width]
//   forward({ z: Float32Array[], batch, height, width, t: Float32Array, context: Float32Array, contextTokens,
//             selfAttentionScales?: Float32Array, captureAttention?: boolean }) -> Promise<Float32Array[]>
//     v per scale, lowest first; with captureAttention: Promise<{ outputs: Float32Array[], attention:
//     { name, kind: 'self' | 'cross', h, w, probs: Float32Array [batch, h*w, nk] }[] }> (head-averaged, S-CFG)
//   dispose()
// Calls run through the one call pattern (addon/model_call.h: one at a time per model, the process compute pool,
// `cancel`: an Int32Array whose element 0 set to non-zero stops the call between blocks with ERR_ABORTED; encodeText
// takes it as its third argument, forward as options.cancel). Inputs are copied (they are small), so the JS arrays
// may change while a call runs.
#include <napi.h>

#include <memory>
#include <vector>

#include "addon/convert.h"
#include "addon/model_call.h"
#include "addon/registry.h"
#include "models/layered_unet.h"

namespace nd::addon {

namespace {

using models::LayeredUNet;

std::vector<float> copy_f32(const Napi::Value& v, const char* name) {
  F32View view = f32_from_js(v, name);
  return std::vector<float>(view.data, view.data + view.length);
}

struct ForwardArgs {
  std::vector<std::vector<float>> z;
  std::vector<float> t, context, self_scales;
  int64_t batch = 0, height = 0, width = 0, tokens = 0;
  bool capture = false;
};

// The JS result of a forward: v per scale, plus the captured attention with S-CFG.
Napi::Value forward_result(Napi::Env env, const std::vector<Buffer>& out,
                           const std::vector<nn::CapturedAttention>* captured) {
  Napi::Array arr = Napi::Array::New(env, out.size());
  for (size_t i = 0; i < out.size(); ++i) arr.Set((uint32_t)i, f32_to_js(env, out[i].data(), (size_t)out[i].numel()));
  if (!captured) return arr;
  Napi::Array att = Napi::Array::New(env, captured->size());
  for (size_t i = 0; i < captured->size(); ++i) {
    const nn::CapturedAttention& c = (*captured)[i];
    const std::string prefix = "model.diffusion_model.";  // names are relative to the U-Net
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", c.name.compare(0, prefix.size(), prefix) == 0 ? c.name.substr(prefix.size()) : c.name);
    o.Set("kind", c.cross ? "cross" : "self");
    o.Set("h", Napi::Number::New(env, (double)c.h));
    o.Set("w", Napi::Number::New(env, (double)c.w));
    o.Set("probs", f32_to_js(env, c.probs.data(), c.probs.size()));
    att.Set((uint32_t)i, o);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("outputs", arr);
  result.Set("attention", att);
  return result;
}

class LayeredUNetWrap : public Napi::ObjectWrap<LayeredUNetWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(
        env, "LayeredUNet",
        {InstanceMethod("encodeText", &LayeredUNetWrap::EncodeText),
         InstanceMethod("forward", &LayeredUNetWrap::Forward), InstanceMethod("dispose", &LayeredUNetWrap::Dispose)});
    exports.Set("LayeredUNet", cls);
  }

  explicit LayeredUNetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LayeredUNetWrap>(info) {
    guarded(info.Env(), [&] {
      if (info.Length() < 2 || !info[1].IsString())
        fail_expected(code::kInvalidArgument, "the config.json text", "config",
                      info.Length() < 2 ? "undefined" : "another type");
      int threads = 0;
      if (info.Length() > 2 && info[2].IsObject() && !info[2].As<Napi::Object>().Get("threads").IsUndefined())
        threads = (int)int_from_js(info[2].As<Napi::Object>(), "threads", 0, 1024);
      auto weights = weights_from_js(info[0]);
      slot_.open(std::make_shared<const LayeredUNet>(
                     weights, models::parse_layered_config(info[1].As<Napi::String>().Utf8Value())),
                 threads);
      return 0;
    });
  }

 private:
  std::shared_ptr<const LayeredUNet> live() const {
    if (slot_.disposed()) fail(code::kDisposed, "The LayeredUNet was disposed");
    return slot_.model;
  }

  Napi::Value EncodeText(const Napi::CallbackInfo& info) {
    return promise_call(info.Env(), [&]() -> Napi::Value {
      auto m = live();
      if (info.Length() < 2 || !info[0].IsTypedArray() ||
          info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        fail_expected(code::kInvalidArgument, "an Int32Array", "ids", "another type");
      Napi::Int32Array a = info[0].As<Napi::Int32Array>();
      if (!info[1].IsNumber()) fail_expected(code::kInvalidArgument, "a number", "batch", "another type");
      const double b = info[1].As<Napi::Number>().DoubleValue();
      if (!(b >= 1) || b != (int64_t)b || a.ElementLength() % (size_t)b != 0 || a.ElementLength() == 0)
        fail_expected(code::kInvalidArgument, "a batch dividing the id count " + std::to_string(a.ElementLength()),
                      "batch", std::to_string(b));
      auto ids = std::make_shared<std::vector<int32_t>>(a.Data(), a.Data() + a.ElementLength());
      auto out = std::make_shared<Buffer>();
      const int64_t batch = (int64_t)b;
      return queue_call(
          info.Env(), slot_, info[2],
          [=](ThreadPool& pool, const CancelFlag& cancel) {
            *out = m->encode_text(pool, cancel, ids->data(), batch, (int64_t)ids->size() / batch);
          },
          [=](Napi::Env env) -> Napi::Value { return f32_to_js(env, out->data(), (size_t)out->numel()); });
    });
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    return promise_call(info.Env(), [&]() -> Napi::Value {
      auto m = live();
      if (info.Length() < 1 || !info[0].IsObject())
        fail_expected(code::kInvalidArgument, "an options object", "forward", "another type");
      Napi::Object o = info[0].As<Napi::Object>();
      const models::LayeredConfig& c = m->config();
      ForwardArgs a;
      a.batch = int_from_js(o, "batch", 1, 4096);
      a.height = int_from_js(o, "height", 1, 8192);
      a.width = int_from_js(o, "width", 1, 8192);
      a.tokens = int_from_js(o, "contextTokens", 1, 4096);
      Napi::Value zv = o.Get("z");
      if (!zv.IsArray() || zv.As<Napi::Array>().Length() != c.scales.size())
        fail_expected(code::kInvalidArgument, "an array of " + std::to_string(c.scales.size()) + " Float32Arrays", "z",
                      "another value");
      const int64_t top = c.scales.back();
      for (uint32_t i = 0; i < c.scales.size(); ++i) {
        a.z.push_back(copy_f32(zv.As<Napi::Array>().Get(i), "z[i]"));
        const int64_t k = top / c.scales[i];
        const int64_t want = a.batch * c.in_channels * (a.height / k) * (a.width / k);
        if ((int64_t)a.z.back().size() != want)
          fail_expected(code::kInvalidArgument, std::to_string(want) + " values", "z[" + std::to_string(i) + "]",
                        std::to_string(a.z.back().size()));
      }
      a.t = copy_f32(o.Get("t"), "t");
      if ((int64_t)a.t.size() != a.batch)
        fail_expected(code::kInvalidArgument, std::to_string(a.batch) + " values", "t", std::to_string(a.t.size()));
      a.context = copy_f32(o.Get("context"), "context");
      if ((int64_t)a.context.size() != a.batch * a.tokens * c.context_dim)
        fail_expected(code::kInvalidArgument, std::to_string(a.batch * a.tokens * c.context_dim) + " values", "context",
                      std::to_string(a.context.size()));
      if (!o.Get("selfAttentionScales").IsUndefined()) {
        a.self_scales = copy_f32(o.Get("selfAttentionScales"), "selfAttentionScales");
        if (a.self_scales.size() != 3)
          fail_expected(code::kInvalidArgument, "3 values", "selfAttentionScales",
                        std::to_string(a.self_scales.size()));
      }
      a.capture = bool_from_js(o, "captureAttention", false);
      auto args = std::make_shared<ForwardArgs>(std::move(a));
      auto out = std::make_shared<std::vector<Buffer>>();
      auto captured = std::make_shared<std::vector<nn::CapturedAttention>>();
      return queue_call(
          info.Env(), slot_, o.Get("cancel"),
          [=](ThreadPool& pool, const CancelFlag& cancel) {
            std::vector<const float*> zs;
            for (auto& z : args->z) zs.push_back(z.data());
            *out = m->forward(pool, cancel, zs, args->batch, args->height, args->width, args->t.data(),
                              args->context.data(), args->tokens,
                              args->self_scales.empty() ? nullptr : args->self_scales.data(),
                              args->capture ? captured.get() : nullptr);
          },
          [=](Napi::Env env) { return forward_result(env, *out, args->capture ? captured.get() : nullptr); });
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_.dispose();  // running calls hold their own reference
    return info.Env().Undefined();
  }

  ModelSlot<const LayeredUNet> slot_;
};

void init(Napi::Env env, Napi::Object exports) { LayeredUNetWrap::Init(env, exports); }

}  // namespace

ND_REGISTER_BINDING("layered", init);

}  // namespace nd::addon
