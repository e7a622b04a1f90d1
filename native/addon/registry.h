// Each binding file registers its exports with ND_REGISTER_BINDING; module.cc
// calls every registered init, so adding a binding never edits a shared list.
#pragma once
#include <napi.h>

#include <exception>
#include <string>
#include <vector>

#include "core/errors.h"

namespace nd::addon {

using InitFn = void (*)(Napi::Env, Napi::Object);

std::vector<std::pair<const char*, InitFn>>& registry();

struct Registration {
  Registration(const char* name, InitFn fn) { registry().emplace_back(name, fn); }
};

// A JS Error with a `code` property from an nd::Error (or any std::exception).
Napi::Error to_js_error(Napi::Env env, const std::exception& e);

// Runs fn and converts nd::Error / std::exception into a thrown JS error.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js_error(env, e);
  }
}

// AsyncWorker that carries an nd::Error code to the rejected promise.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  // Runs off the main thread; throw nd::Error to reject.
  virtual void Compute() = 0;
  // Runs on the main thread after Compute succeeded.
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void Execute() final {
    try {
      Compute();
    } catch (const Error& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::bad_alloc&) {
      code_ = code::kOutOfMemory;
      SetError("Out of memory");
    } catch (const std::exception& e) {
      code_ = code::kInternal;
      SetError(e.what());
    }
  }
  void OnOK() final {
    Napi::HandleScope scope(Env());
    try {
      deferred_.Resolve(Result(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) final {
    Napi::HandleScope scope(Env());
    Napi::Object err = e.Value();
    err.Set("code", Napi::String::New(Env(), code_.empty() ? code::kInternal : code_));
    deferred_.Reject(err);
  }

  Napi::Promise::Deferred deferred_;
  std::string code_;
};

}  // namespace nd::addon

#define ND_CONCAT_INNER(a, b) a##b
#define ND_CONCAT(a, b) ND_CONCAT_INNER(a, b)
#define ND_REGISTER_BINDING(name, fn) static ::nd::addon::Registration ND_CONCAT(nd_registration_, __LINE__)(name, fn)
