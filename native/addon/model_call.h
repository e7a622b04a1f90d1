// Shared plumbing for model bindings whose methods return Promises: a model slot
// that can be disposed while calls are in flight (each call holds its own
// references), a per-model queue that runs calls one at a time, a worker built from
// two lambdas, and small JS argument readers with "Expected … but received …" errors.
#pragma once
#include <napi.h>

#include <cmath>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "addon/registry.h"
#include "core/threadpool.h"

namespace nd::addon {

class CallWorker;

// Calls on one model run one at a time: the first is queued on the libuv pool, later ones wait here
// (not in a pool thread, so many pending calls cannot starve fs and other async work). Main thread only.
struct CallQueue {
  bool running = false;
  std::deque<CallWorker*> pending;
};

template <typename Model>
struct ModelSlot {
  std::shared_ptr<const Model> model;
  std::shared_ptr<ThreadPool> pool;
  std::shared_ptr<CallQueue> queue = std::make_shared<CallQueue>();

  bool disposed() const { return !model; }
  // Calls already accepted keep their own references and finish; later calls see disposed().
  void dispose() {
    model.reset();
    pool.reset();
  }
};

// compute() runs off the main thread; result() converts its output on the main thread.
class CallWorker : public PromiseWorker {
 public:
  CallWorker(Napi::Env env, std::shared_ptr<CallQueue> queue, std::function<void()> compute,
             std::function<Napi::Value(Napi::Env)> result)
      : PromiseWorker(env), queue_(std::move(queue)), compute_(std::move(compute)), result_(std::move(result)) {}

 protected:
  void Compute() override { compute_(); }
  Napi::Value Result(Napi::Env env) override { return result_(env); }
  // After the promise settled (main thread): start the next pending call of this model.
  void Destroy() override {
    std::shared_ptr<CallQueue> queue = std::move(queue_);
    if (!queue->pending.empty()) {
      CallWorker* next = queue->pending.front();
      queue->pending.pop_front();
      next->Queue();
    } else {
      queue->running = false;
    }
    delete this;
  }

 private:
  std::shared_ptr<CallQueue> queue_;
  std::function<void()> compute_;
  std::function<Napi::Value(Napi::Env)> result_;
};

// Creates a CallWorker, runs it now or after the model's running call, and returns its promise.
inline Napi::Promise queue_call(Napi::Env env, const std::shared_ptr<CallQueue>& queue, std::function<void()> compute,
                                std::function<Napi::Value(Napi::Env)> result) {
  auto* worker = new CallWorker(env, queue, std::move(compute), std::move(result));
  Napi::Promise promise = worker->promise();
  if (queue->running) {
    queue->pending.push_back(worker);
  } else {
    queue->running = true;
    worker->Queue();
  }
  return promise;
}

// A promise already rejected with the typed error (argument errors of async methods reject, never throw).
inline Napi::Promise rejected(Napi::Env env, const std::exception& e) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(to_js_error(env, e).Value());
  return deferred.Promise();
}

// Runs `fn` (which returns a promise); any exception it throws becomes a rejected promise.
template <typename Fn>
Napi::Value promise_call(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  } catch (const std::exception& e) {
    return rejected(env, e);
  }
}

inline std::string describe_js(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) {
    const double d = v.As<Napi::Number>().DoubleValue();
    return d == std::floor(d) && std::fabs(d) < 1e15 ? std::to_string((int64_t)d) : std::to_string(d);
  }
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "an array of length " + std::to_string(v.As<Napi::Array>().Length());
  if (v.IsTypedArray()) return "a typed array of length " + std::to_string(v.As<Napi::TypedArray>().ElementLength());
  return "an object";
}

[[noreturn]] inline void expected_js(const std::string& what, const std::string& name, const Napi::Value& got) {
  fail_expected(code::kInvalidArgument, what, name, describe_js(got));
}

// An integer in [min, max].
inline int64_t int_arg(const Napi::Value& v, const std::string& name, int64_t min, int64_t max) {
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d != std::floor(d) || d < (double)min || d > (double)max)
    expected_js("an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", name, v);
  return (int64_t)d;
}

// An integer in [min, max]; `fallback` when the value is undefined.
inline int64_t optional_int_arg(const Napi::Value& v, const std::string& name, int64_t min, int64_t max,
                                int64_t fallback) {
  return v.IsUndefined() ? fallback : int_arg(v, name, min, max);
}

inline bool bool_arg(const Napi::Value& v, const std::string& name, bool fallback) {
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) expected_js("a boolean", name, v);
  return v.As<Napi::Boolean>().Value();
}

// An options object (undefined -> empty object).
inline Napi::Object options_arg(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (v.IsUndefined() || v.IsNull()) return Napi::Object::New(env);
  if (!v.IsObject() || v.IsArray()) expected_js("an options object", name, v);
  return v.As<Napi::Object>();
}

// { threads } of a model constructor: 0 or absent = one per hardware thread.
inline int threads_arg(Napi::Env env, const Napi::Value& v) {
  return (int)optional_int_arg(options_arg(env, v, "options").Get("threads"), "options.threads", 0, 1024, 0);
}

// A shape array of `rank` integers, each in [1, max].
inline std::vector<int64_t> shape_arg(const Napi::Value& v, const std::string& name, size_t rank, int64_t max) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != rank)
    expected_js("an array of " + std::to_string(rank) + " integers", name, v);
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < rank; ++i) out.push_back(int_arg(a.Get(i), name + "[" + std::to_string(i) + "]", 1, max));
  return out;
}

}  // namespace nd::addon
