// The one async call pattern of the model bindings. A ModelSlot holds a model, the process compute pool it runs
// with (core/threadpool.h compute_pool: shared by every model built with the same `threads`) and the model's call
// queue; queue_call() runs one call off the main thread, after the model's earlier calls, with the pool and the
// call's cancellation flag handed in at compute time. Also small JS argument readers with "Expected … but
// received …" errors.
#pragma once
#include <napi.h>

#include <cmath>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon/registry.h"
#include "core/cancel.h"
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
  std::shared_ptr<Model> model;
  std::shared_ptr<ThreadPool> pool;
  std::shared_ptr<CallQueue> queue = std::make_shared<CallQueue>();

  // The model, and the process compute pool for `threads` (0 = one per hardware thread).
  void open(std::shared_ptr<Model> m, int threads) {
    model = std::move(m);
    pool = compute_pool(threads);
  }
  bool disposed() const { return !model; }
  // Calls already accepted keep their own references and finish; later calls see disposed().
  void dispose() {
    model.reset();
    pool.reset();
  }
};

// compute(pool, cancel) runs off the main thread; result() converts its output on the main thread.
using ComputeFn = std::function<void(ThreadPool&, const CancelFlag&)>;
using ResultFn = std::function<Napi::Value(Napi::Env)>;

// The cancellation flag of a call: `cancel` is undefined (not cancellable) or an Int32Array whose element 0 the
// caller sets to non-zero (Atomics.store) to stop the call; the worker keeps the array alive while it runs.
class CallCancel {
 public:
  CallCancel() = default;
  CallCancel(const Napi::Value& v, const std::string& name);
  const CancelFlag& flag() const { return flag_; }

 private:
  Napi::Reference<Napi::Int32Array> ref_;
  CancelFlag flag_;
};

inline CallCancel::CallCancel(const Napi::Value& v, const std::string& name) {
  if (v.IsUndefined() || v.IsNull()) return;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      v.As<Napi::TypedArray>().ElementLength() < 1)
    fail_expected(code::kInvalidArgument, "an Int32Array of length 1 or more", name, "another value");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  ref_ = Napi::Persistent(a);
  flag_.word = a.Data();
}

class CallWorker : public PromiseWorker {
 public:
  CallWorker(Napi::Env env, std::shared_ptr<CallQueue> queue, std::shared_ptr<ThreadPool> pool, CallCancel cancel,
             ComputeFn compute, ResultFn result)
      : PromiseWorker(env),
        queue_(std::move(queue)),
        pool_(std::move(pool)),
        cancel_(std::move(cancel)),
        compute_(std::move(compute)),
        result_(std::move(result)) {}

 protected:
  void Compute() override {
    cancel_.flag().check();  // aborted while it waited in the queue
    compute_(*pool_, cancel_.flag());
  }
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
    delete this;  // releases the cancel array's reference on the main thread
  }

 private:
  std::shared_ptr<CallQueue> queue_;
  std::shared_ptr<ThreadPool> pool_;
  CallCancel cancel_;
  ComputeFn compute_;
  ResultFn result_;
};

// Runs compute(pool, cancel) for `slot`'s model now or after its running call, and returns the call's promise.
// `cancel`: the JS cancellation flag (see CallCancel), undefined for none.
template <typename Model>
Napi::Promise queue_call(Napi::Env env, const ModelSlot<Model>& slot, const Napi::Value& cancel, ComputeFn compute,
                         ResultFn result) {
  CallCancel flag(cancel, "options.cancel");
  auto* worker = new CallWorker(env, slot.queue, slot.pool, std::move(flag), std::move(compute), std::move(result));
  Napi::Promise promise = worker->promise();
  CallQueue& queue = *slot.queue;
  if (queue.running) {
    queue.pending.push_back(worker);
  } else {
    queue.running = true;
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
