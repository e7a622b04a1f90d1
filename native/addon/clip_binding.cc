// JS class TextEncoder: new TextEncoder(weights, config, { threads }),
// encode(ids: Int32Array, batch, { layersToRun?, finalLayerNorm?, cancel? }) -> Promise<Float32Array [batch,
// maxPositions, hidden]>, dispose(). Calls run off the main thread, one at a time per model (addon/model_call.h);
// `cancel` is an Int32Array whose element 0 set to non-zero stops the call between layers (ERR_ABORTED).
#include <napi.h>

#include <cstring>

#include "addon/convert.h"
#include "addon/model_call.h"
#include "addon/registry.h"
#include "models/clip_text.h"

namespace nd::addon {
namespace {

std::string string_arg(const Napi::Object& o, const char* key, const std::string& name) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) expected_js("a string", name, v);
  return v.As<Napi::String>().Utf8Value();
}

// The one place a JS TextEncoderConfig (lib/loading/types.ts) becomes the C++ struct.
TextEncoderConfig text_encoder_config_from_js(Napi::Env env, const Napi::Value& v) {
  Napi::Object o = options_arg(env, v, "config");
  TextEncoderConfig c;
  const std::string kind = string_arg(o, "kind", "config.kind");
  if (kind == "clip")
    c.kind = TextEncoderConfig::Kind::kClip;
  else if (kind == "openclip")
    c.kind = TextEncoderConfig::Kind::kOpenClip;
  else
    fail_expected(code::kInvalidArgument, "\"clip\" or \"openclip\"", "config.kind", "\"" + kind + "\"");
  const std::string activation = string_arg(o, "activation", "config.activation");
  if (activation == "quick_gelu")
    c.activation = TextEncoderConfig::Activation::kQuickGelu;
  else if (activation == "gelu")
    c.activation = TextEncoderConfig::Activation::kGelu;
  else
    fail_expected(code::kInvalidArgument, "\"quick_gelu\" or \"gelu\"", "config.activation", "\"" + activation + "\"");
  c.hidden = int_arg(o.Get("hidden"), "config.hidden", 1, 65536);
  c.layers = int_arg(o.Get("layers"), "config.layers", 0, 1024);
  c.heads = int_arg(o.Get("heads"), "config.heads", 1, 4096);
  c.intermediate = int_arg(o.Get("intermediate"), "config.intermediate", 1, 1 << 20);
  c.vocab_size = int_arg(o.Get("vocabSize"), "config.vocabSize", 1, 1 << 24);
  c.max_positions = int_arg(o.Get("maxPositions"), "config.maxPositions", 1, 65536);
  c.default_layers_to_run = int_arg(o.Get("defaultLayersToRun"), "config.defaultLayersToRun", 0, c.layers);
  c.pad_token = int_arg(o.Get("padToken"), "config.padToken", 0, c.vocab_size - 1);
  return c;
}

class TextEncoderWrap : public Napi::ObjectWrap<TextEncoderWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(
        env, "TextEncoder",
        {InstanceMethod("encode", &TextEncoderWrap::Encode), InstanceMethod("dispose", &TextEncoderWrap::Dispose),
         InstanceAccessor("disposed", &TextEncoderWrap::Disposed, nullptr)});
    exports.Set("TextEncoder", cls);
  }

  explicit TextEncoderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TextEncoderWrap>(info) {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      if (!info.IsConstructCall()) fail(code::kInvalidArgument, "TextEncoder must be created with new");
      std::shared_ptr<WeightStore> weights = weights_from_js(info[0]);
      const TextEncoderConfig config = text_encoder_config_from_js(env, info[1]);
      const int threads = threads_arg(env, info[2]);
      slot_.open(std::make_shared<const ClipTextEncoder>(std::move(weights), config), threads);
    });
  }

 private:
  Napi::Value Encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_call(env, [&]() -> Napi::Value {
      if (slot_.disposed()) fail(code::kDisposed, "This TextEncoder was disposed");
      const TextEncoderConfig& config = slot_.model->config();
      if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        expected_js("an Int32Array", "ids", info[0]);
      Napi::Int32Array ids = info[0].As<Napi::Int32Array>();
      const int64_t batch = int_arg(info[1], "batch", 1, 65536);
      const int64_t tokens = config.max_positions;
      if ((int64_t)ids.ElementLength() != batch * tokens)
        fail_expected(code::kInvalidArgument,
                      std::to_string(batch * tokens) + " ids (batch " + std::to_string(batch) + " x " +
                          std::to_string(tokens) + " tokens)",
                      "ids", "an Int32Array of length " + std::to_string(ids.ElementLength()));
      Napi::Object options = options_arg(env, info[2], "options");
      TextEncodeOptions run;
      run.layers_to_run = optional_int_arg(options.Get("layersToRun"), "options.layersToRun", 0, config.layers, -1);
      run.final_layer_norm = bool_arg(options.Get("finalLayerNorm"), "options.finalLayerNorm", true);

      auto input = std::make_shared<std::vector<int32_t>>(ids.Data(), ids.Data() + ids.ElementLength());
      auto output = std::make_shared<Buffer>();
      auto model = slot_.model;
      return queue_call(
          env, slot_, options.Get("cancel"),
          [=](ThreadPool& pool, const CancelFlag& cancel) {
            *output = model->encode(pool, cancel, input->data(), batch, tokens, run);
          },
          [=](Napi::Env e) -> Napi::Value { return f32_to_js(e, output->data(), (size_t)output->numel()); });
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_.dispose();
    return info.Env().Undefined();
  }

  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), slot_.disposed()); }

  ModelSlot<const ClipTextEncoder> slot_;
};

void init(Napi::Env env, Napi::Object exports) { TextEncoderWrap::Init(env, exports); }

}  // namespace

ND_REGISTER_BINDING("clip", init);

}  // namespace nd::addon
