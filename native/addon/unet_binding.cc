// JS class `UNet`: new UNet(weights, config, { threads }); forward(...) -> Promise, run off the
// main thread; dispose(). Inputs are copied on the main thread so the JS arrays may change or be
// collected while the worker runs; a running forward keeps the model alive past dispose().
#include "addon/unet_binding.h"

#include <napi.h>

#include <cmath>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "addon/convert.h"
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
  c.transformer_depth = int_from_js(o, "transformerDepth", 1, 16);
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

class ForwardWorker;

// Forwards on one model run one after another: a call made while another runs waits here (on
// the main thread) instead of occupying a libuv worker thread on the model's mutex.
struct ForwardQueue {
  std::deque<ForwardWorker*> pending;
  bool running = false;
  void submit(ForwardWorker* w);
  void next();
};

class ForwardWorker : public PromiseWorker {
 public:
  ForwardWorker(Napi::Env env, std::shared_ptr<UNet> model, std::shared_ptr<ForwardQueue> queue)
      : PromiseWorker(env), model_(std::move(model)), queue_(std::move(queue)) {}

  std::vector<float> sample, context;
  std::vector<double> timesteps;
  UNetInputs in;
  UNetForwardOptions opt;

 protected:
  void Compute() override {
    in.sample = sample.data();
    in.context = context.data();
    in.timesteps = timesteps.data();
    output_.resize((size_t)(in.B * model_->config().out_channels * in.H * in.W));
    model_->forward(in, opt, output_.data(), opt.capture_attention ? &captured_ : nullptr);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Float32Array out = f32_to_js(env, output_.data(), output_.size());
    if (!opt.capture_attention) return out;
    Napi::Object r = Napi::Object::New(env);
    r.Set("output", out);
    Napi::Array list = Napi::Array::New(env, captured_.size());
    const std::string prefix = "model.diffusion_model.";
    for (size_t i = 0; i < captured_.size(); ++i) {
      const unet::CapturedAttention& c = captured_[i];
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

  void OnWorkComplete(Napi::Env env, napi_status status) override {
    std::shared_ptr<ForwardQueue> queue = queue_;  // the base call deletes this worker
    PromiseWorker::OnWorkComplete(env, status);
    queue->next();
  }

 private:
  std::shared_ptr<UNet> model_;
  std::shared_ptr<ForwardQueue> queue_;
  std::vector<float> output_;
  std::vector<unet::CapturedAttention> captured_;
};

void ForwardQueue::submit(ForwardWorker* w) {
  if (running) {
    pending.push_back(w);
    return;
  }
  running = true;
  w->Queue();
}

void ForwardQueue::next() {
  if (pending.empty()) {
    running = false;
    return;
  }
  ForwardWorker* w = pending.front();
  pending.pop_front();
  w->Queue();
}

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
      model_ = std::make_shared<UNet>(std::move(weights), config, threads);
      info.This().As<Napi::Object>().TypeTag(&kUNetTag);
    });
  }

  static constexpr napi_type_tag kUNetTag = {0x6e642d756e657431ull, 0x9b1f3c5a7d2e4f60ull};  // "nd-unet1"
  std::shared_ptr<UNet> model() const { return model_; }

 private:
  static Napi::Value Rejected(Napi::Env env, const std::exception& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(to_js_error(env, e).Value());
    return d.Promise();
  }

  // forward(sample, [B, C, H, W], timesteps, context, [B, T, D], options?)
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    try {
      if (!model_) fail(code::kDisposed, "This UNet was disposed");
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
      auto* w = new ForwardWorker(env, model_, queue_);
      w->sample.assign(sample.data, sample.data + sample.length);
      w->context.assign(context.data, context.data + context.length);
      w->timesteps = std::move(timesteps);
      w->opt = opt;
      UNetInputs& in = w->in;
      in.B = shape[0], in.C = shape[1], in.H = shape[2], in.W = shape[3];
      in.context_batch = cshape[0], in.T = cshape[1], in.D = cshape[2];
      in.num_timesteps = (int64_t)w->timesteps.size();
      in.sample = w->sample.data();
      in.context = w->context.data();
      in.timesteps = w->timesteps.data();
      try {
        model_->check_inputs(in);
      } catch (...) {
        delete w;
        throw;
      }
      Napi::Promise p = w->promise();
      queue_->submit(w);
      return p;
    } catch (const Napi::Error& e) {
      Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
      d.Reject(e.Value());
      return d.Promise();
    } catch (const std::exception& e) {
      return Rejected(env, e);
    }
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    model_.reset();  // a running forward holds its own reference
    return info.Env().Undefined();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("disposed", !model_);
    o.Set("peakActivationBytes", model_ ? (double)model_->last_peak_activation_bytes() : 0.0);
    return o;
  }

  std::shared_ptr<UNet> model_;
  std::shared_ptr<ForwardQueue> queue_ = std::make_shared<ForwardQueue>();
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
    o.Set("transformerDepth", (double)c.transformer_depth);
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
