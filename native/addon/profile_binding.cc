// profile.enable(on: boolean), profile.reset(), profile.read() -> { [op]: { wallSeconds, cpuSeconds, calls } }
// Op-level timers of the model graphs (nn/profile.h), for `bench sd15 --profile`.
#include <napi.h>

#include "addon/registry.h"
#include "nn/profile.h"

namespace nd::addon {
namespace {

Napi::Value Enable(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsBoolean()) fail_expected(code::kInvalidArgument, "a boolean", "profile.enable(on)", "another value");
    prof::set_enabled(info[0].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

Napi::Value Reset(const Napi::CallbackInfo& info) {
  prof::reset();
  return info.Env().Undefined();
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (int i = 0; i < (int)prof::Op::kCount; ++i) {
    const prof::Totals t = prof::totals((prof::Op)i);
    Napi::Object o = Napi::Object::New(env);
    o.Set("wallSeconds", t.wall_s);
    o.Set("cpuSeconds", t.cpu_s);
    o.Set("calls", (double)t.calls);
    out.Set(prof::op_name((prof::Op)i), o);
  }
  return out;
}

void init(Napi::Env env, Napi::Object exports) {
  Napi::Object p = Napi::Object::New(env);
  p.Set("enable", Napi::Function::New(env, Enable));
  p.Set("reset", Napi::Function::New(env, Reset));
  p.Set("read", Napi::Function::New(env, Read));
  exports.Set("profile", p);
}

}  // namespace

ND_REGISTER_BINDING("profile", init);

}  // namespace nd::addon
