// JS class VAE: new VAE(weights, config, { threads }),
// decode(latents: Float32Array, shape [B, latent, h, w], { tile?: boolean | { size?, overlap? }, cancel? })
//   -> Promise<Float32Array [B, 3, f·h, f·w]> (latents already divided by the scaling factor),
// encode(image: Float32Array, shape [B, 3, H, W], { cancel? }) -> Promise<{ mean, logvar }> (each [B, latent, H/f,
// W/f]), dispose(). Calls run off the main thread, one at a time per model (addon/model_call.h); `cancel` is an
// Int32Array whose element 0 set to non-zero stops the call between blocks / tiles (ERR_ABORTED).
#include <napi.h>

#include "addon/convert.h"
#include "addon/model_call.h"
#include "addon/registry.h"
#include "models/vae.h"

namespace nd::addon {
namespace {

// The one place a JS VaeConfig (lib/loading/types.ts) becomes the C++ struct.
VaeConfig vae_config_from_js(Napi::Env env, const Napi::Value& v) {
  Napi::Object o = options_arg(env, v, "config");
  VaeConfig c;
  c.latent_channels = int_arg(o.Get("latentChannels"), "config.latentChannels", 1, 1024);
  Napi::Value channels = o.Get("channels");
  if (!channels.IsArray() || channels.As<Napi::Array>().Length() < 1 || channels.As<Napi::Array>().Length() > 8)
    expected_js("an array of 1 to 8 channel counts", "config.channels", channels);
  Napi::Array ca = channels.As<Napi::Array>();
  c.channels.clear();
  for (uint32_t i = 0; i < ca.Length(); ++i)
    c.channels.push_back(int_arg(ca.Get(i), "config.channels[" + std::to_string(i) + "]", 1, 65536));
  c.num_res_blocks = int_arg(o.Get("numResBlocks"), "config.numResBlocks", 1, 64);
  c.norm_groups = int_arg(o.Get("normGroups"), "config.normGroups", 1, 65536);
  Napi::Value scaling = o.Get("scalingFactor");
  if (!scaling.IsNumber() || !(scaling.As<Napi::Number>().DoubleValue() > 0))
    expected_js("a positive number", "config.scalingFactor", scaling);
  c.scaling_factor = scaling.As<Napi::Number>().DoubleValue();
  return c;
}

// Float32Array `name` holding exactly numel(shape) values, copied (the JS buffer may change while we run).
std::shared_ptr<std::vector<float>> tensor_arg(const Napi::Value& v, const std::string& name, const Shape& shape) {
  const F32View view = f32_from_js(v, name.c_str());
  if ((int64_t)view.length != numel(shape))
    fail_expected(code::kInvalidArgument, std::to_string(numel(shape)) + " values (shape " + shape_str(shape) + ")",
                  name, "a Float32Array of length " + std::to_string(view.length));
  return std::make_shared<std::vector<float>>(view.data, view.data + view.length);
}

class VaeWrap : public Napi::ObjectWrap<VaeWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function cls = DefineClass(
        env, "VAE",
        {InstanceMethod("decode", &VaeWrap::Decode), InstanceMethod("encode", &VaeWrap::Encode),
         InstanceMethod("dispose", &VaeWrap::Dispose), InstanceAccessor("disposed", &VaeWrap::Disposed, nullptr),
         InstanceAccessor("hasEncoder", &VaeWrap::HasEncoder, nullptr),
         InstanceAccessor("factor", &VaeWrap::Factor, nullptr)});
    exports.Set("VAE", cls);
  }

  explicit VaeWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VaeWrap>(info) {
    Napi::Env env = info.Env();
    guarded(env, [&] {
      if (!info.IsConstructCall()) fail(code::kInvalidArgument, "VAE must be created with new");
      std::shared_ptr<WeightStore> weights = weights_from_js(info[0]);
      const VaeConfig config = vae_config_from_js(env, info[1]);
      const int threads = threads_arg(env, info[2]);
      slot_.open(std::make_shared<const Vae>(std::move(weights), config), threads);
      factor_ = slot_.model->factor();
      has_encoder_ = slot_.model->has_encoder();
    });
  }

 private:
  void check_live() const {
    if (slot_.disposed()) fail(code::kDisposed, "This VAE was disposed");
  }

  Napi::Value Decode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_call(env, [&]() -> Napi::Value {
      check_live();
      const VaeConfig& config = slot_.model->config();
      const int64_t max_side = Vae::kMaxImageSide / factor_;
      const Shape shape = shape_arg(info[1], "shape", 4, 65536);
      if (shape[1] != config.latent_channels)
        fail_expected(code::kInvalidArgument, std::to_string(config.latent_channels) + " latent channels", "shape[1]",
                      std::to_string(shape[1]));
      if (shape[0] > 1024 || shape[2] > max_side || shape[3] > max_side)
        fail_expected(code::kInvalidArgument,
                      "a batch of at most 1024 and latent sides of at most " + std::to_string(max_side), "shape",
                      shape_str(shape));
      auto input = tensor_arg(info[0], "latents", shape);
      Napi::Object options = options_arg(env, info[2], "options");
      Napi::Value tile = options.Get("tile");
      bool tiled = false;
      VaeTileOptions tiles;
      if (tile.IsBoolean()) {
        tiled = tile.As<Napi::Boolean>().Value();
      } else if (!tile.IsUndefined()) {
        Napi::Object t = options_arg(env, tile, "options.tile");
        tiled = true;
        tiles.size = optional_int_arg(t.Get("size"), "options.tile.size", 4, 4096, tiles.size);
        tiles.overlap = optional_int_arg(t.Get("overlap"), "options.tile.overlap", 0, tiles.size / 2,
                                         std::min<int64_t>(tiles.overlap, tiles.size / 4));
      }
      auto output = std::make_shared<Buffer>();
      auto model = slot_.model;
      return queue_call(
          env, slot_, options.Get("cancel"),
          [=](ThreadPool& pool, const CancelFlag& cancel) {
            *output = tiled ? model->decode_tiled(pool, cancel, input->data(), shape[0], shape[2], shape[3], tiles)
                            : model->decode(pool, cancel, input->data(), shape[0], shape[2], shape[3]);
          },
          [=](Napi::Env e) -> Napi::Value { return f32_to_js(e, output->data(), (size_t)output->numel()); });
    });
  }

  Napi::Value Encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return promise_call(env, [&]() -> Napi::Value {
      check_live();
      if (!has_encoder_) fail(code::kUnsupported, "This VAE has no encoder weights (first_stage_model.encoder.*)");
      const Shape shape = shape_arg(info[1], "shape", 4, Vae::kMaxImageSide);
      if (shape[1] != Vae::kImageChannels)
        fail_expected(code::kInvalidArgument, "3 image channels", "shape[1]", std::to_string(shape[1]));
      if (shape[0] > 1024)
        fail_expected(code::kInvalidArgument, "a batch of at most 1024", "shape[0]", std::to_string(shape[0]));
      if (shape[2] % factor_ || shape[3] % factor_)
        fail_expected(code::kInvalidArgument, "a height and width that are multiples of " + std::to_string(factor_),
                      "shape", shape_str(shape));
      auto input = tensor_arg(info[0], "image", shape);
      auto output = std::make_shared<VaeMoments>();
      Napi::Object options = options_arg(env, info[2], "options");
      auto model = slot_.model;
      return queue_call(
          env, slot_, options.Get("cancel"),
          [=](ThreadPool& pool, const CancelFlag& cancel) {
            *output = model->encode(pool, cancel, input->data(), shape[0], shape[2], shape[3]);
          },
          [=](Napi::Env e) -> Napi::Value {
            Napi::Object o = Napi::Object::New(e);
            o.Set("mean", f32_to_js(e, output->mean.data(), (size_t)output->mean.numel()));
            o.Set("logvar", f32_to_js(e, output->logvar.data(), (size_t)output->logvar.numel()));
            return o;
          });
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    slot_.dispose();
    return info.Env().Undefined();
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), slot_.disposed()); }
  Napi::Value HasEncoder(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), has_encoder_); }
  Napi::Value Factor(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)factor_); }

  ModelSlot<const Vae> slot_;
  int64_t factor_ = 8;
  bool has_encoder_ = false;
};

void init(Napi::Env env, Napi::Object exports) { VaeWrap::Init(env, exports); }

}  // namespace

ND_REGISTER_BINDING("vae", init);

}  // namespace nd::addon
