// Test hooks for the native core (exports.coreTest): the thread pool and the arena are
// exercised from test/core.test.ts through these small drivers. They allocate nothing
// that outlives a call and take sizes from JS only after validating them.
#include <napi.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "addon/registry.h"
#include "core/arena.h"
#include "core/threadpool.h"

namespace nd::addon {
namespace {

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max) {
  if (info.Length() <= i || !info[i].IsNumber())
    fail_expected(code::kInvalidArgument, "a number", name, "a non-number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= (double)min && v <= (double)max) || v != (double)(int64_t)v) {
    fail_expected(code::kInvalidArgument, "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
                  name, std::to_string(v));
  }
  return (int64_t)v;
}

Napi::Int32Array to_int32(Napi::Env env, const std::vector<std::atomic<int32_t>>& values) {
  Napi::Int32Array out = Napi::Int32Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = values[i].load();
  return out;
}

// parallelFor(n, threads, grain) -> { visits, workers, chunks, poolSize }: how often each item
// was visited, which worker visited it last, and the [begin, end) chunks handed out.
Napi::Value ParallelFor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t n = int_arg(info, 0, "n", 0, 1 << 24);
    const int threads = (int)int_arg(info, 1, "threads", 0, 256);
    const int64_t grain = int_arg(info, 2, "grain", 1, 1 << 24);
    ThreadPool pool(threads);
    std::vector<std::atomic<int32_t>> visits(n), workers(n);
    std::mutex chunks_mutex;
    std::vector<std::pair<int64_t, int64_t>> chunks;
    pool.parallel_for(
        n,
        [&](int64_t b, int64_t e, int w) {
          {
            std::lock_guard<std::mutex> lock(chunks_mutex);
            chunks.emplace_back(b, e);
          }
          for (int64_t i = b; i < e; ++i) {
            visits[i].fetch_add(1);
            workers[i].store(w);
          }
        },
        grain);
    Napi::Object out = Napi::Object::New(env);
    out.Set("visits", to_int32(env, visits));
    out.Set("workers", to_int32(env, workers));
    Napi::Array c = Napi::Array::New(env, chunks.size());
    for (uint32_t i = 0; i < chunks.size(); ++i) {
      Napi::Array pair = Napi::Array::New(env, 2);
      pair.Set(0u, Napi::Number::New(env, (double)chunks[i].first));
      pair.Set(1u, Napi::Number::New(env, (double)chunks[i].second));
      c.Set(i, pair);
    }
    out.Set("chunks", c);
    out.Set("poolSize", pool.size());
    return out;
  });
}

// runTasks(tasks, threads, spinMicros) -> { visits, workers, distinctWorkers }. Each task spins a
// little so that, with several threads, more than one worker takes part.
Napi::Value RunTasks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t tasks = int_arg(info, 0, "tasks", 0, 1 << 24);
    const int threads = (int)int_arg(info, 1, "threads", 0, 256);
    const int64_t spin_us = int_arg(info, 2, "spinMicros", 0, 100000);
    ThreadPool pool(threads);
    std::vector<std::atomic<int32_t>> visits(tasks), workers(tasks);
    std::vector<std::atomic<int32_t>> used(pool.size());
    pool.run_tasks(tasks, [&](int64_t t, int w) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
      while (std::chrono::steady_clock::now() < until) {
      }
      visits[t].fetch_add(1);
      workers[t].store(w);
      used.at(w).store(1);
    });
    int distinct = 0;
    for (auto& u : used) distinct += u.load();
    Napi::Object out = Napi::Object::New(env);
    out.Set("visits", to_int32(env, visits));
    out.Set("workers", to_int32(env, workers));
    out.Set("distinctWorkers", distinct);
    out.Set("poolSize", pool.size());
    return out;
  });
}

// parallelThrow(n, threads, throwAt, kind): item `throwAt` throws (kind 'nd' -> nd::Error with
// ERR_SHAPE_MISMATCH, 'std' -> std::runtime_error, 'int' -> a non-std exception). The error
// reaches JS with its code; afterwards the same pool must still run a full region.
Napi::Value ParallelThrow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t n = guarded(env, [&] { return int_arg(info, 0, "n", 1, 1 << 20); });
  const int threads = (int)guarded(env, [&] { return int_arg(info, 1, "threads", 0, 256); });
  const int64_t throw_at = guarded(env, [&] { return int_arg(info, 2, "throwAt", 0, n - 1); });
  const std::string kind = info.Length() > 3 && info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : "nd";
  ThreadPool pool(threads);
  std::atomic<int64_t> visited{0};
  std::string error_code, message;
  try {
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        visited.fetch_add(1);
        if (i != throw_at) continue;
        if (kind == "std") throw std::runtime_error("task " + std::to_string(i) + " failed");
        if (kind == "int") throw 42;
        fail(code::kShapeMismatch, "task " + std::to_string(i) + " failed");
      }
    });
  } catch (const Error& e) {
    error_code = e.code();
    message = e.what();
  } catch (const std::exception& e) {
    error_code = code::kInternal;
    message = e.what();
  } catch (...) {
    error_code = code::kInternal;
    message = "unknown exception";
  }
  // The pool survives: a second region over every item completes.
  std::atomic<int64_t> after{0};
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) { after.fetch_add(e - b); });
  Napi::Object out = Napi::Object::New(env);
  out.Set("code", error_code);
  out.Set("message", message);
  out.Set("visitedBeforeError", Napi::Number::New(env, (double)visited.load()));
  out.Set("completedAfter", Napi::Number::New(env, (double)after.load()));
  return out;
}

// rethrow(n, threads, throwAt): like parallelThrow's 'nd' case but lets the error escape to JS
// through the binding's normal error path (a thrown JS Error with .code).
Napi::Value ParallelRethrow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t n = int_arg(info, 0, "n", 1, 1 << 20);
    const int threads = (int)int_arg(info, 1, "threads", 0, 256);
    const int64_t throw_at = int_arg(info, 2, "throwAt", 0, n - 1);
    ThreadPool pool(threads);
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      if (throw_at >= b && throw_at < e) fail(code::kAborted, "stopped at item " + std::to_string(throw_at));
    });
    return env.Undefined();
  });
}

// nested(n, threads) -> total items visited by an inner parallel_for started inside each outer
// item (it runs inline on the worker instead of deadlocking the pool).
Napi::Value Nested(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t n = int_arg(info, 0, "n", 0, 4096);
    const int threads = (int)int_arg(info, 1, "threads", 0, 256);
    ThreadPool pool(threads);
    std::atomic<int64_t> total{0};
    pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) pool.parallel_for(n, [&](int64_t b2, int64_t e2, int) { total += e2 - b2; });
    });
    return Napi::Number::New(env, (double)total.load());
  });
}

// arena(chunkBytes, ops) -> per-op states. ops: ['alloc', bytes, align] | ['mark'] |
// ['reset', markIndex] | ['resetAll'] | ['release']. Each alloc fills its block with a pattern
// and the driver checks, at the end, that every block still live holds its pattern (no two
// live allocations share bytes). Addresses are returned as BigInt.
Napi::Value ArenaScript(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int64_t chunk = int_arg(info, 0, "chunkBytes", 1, int64_t(1) << 30);
    if (info.Length() < 2 || !info[1].IsArray())
      fail_expected(code::kInvalidArgument, "an array", "ops", "a non-array");
    Napi::Array ops = info[1].As<Napi::Array>();
    Arena arena((size_t)chunk);
    std::vector<std::pair<Arena::Mark, size_t>> marks;  // and the op index that took it
    struct Block {
      unsigned char* p;
      size_t bytes;
      unsigned char fill;
      size_t op;
    };
    std::vector<Block> live;
    Napi::Array states = Napi::Array::New(env, ops.Length());
    for (uint32_t i = 0; i < ops.Length(); ++i) {
      Napi::Value opv = ops.Get(i);
      if (!opv.IsArray()) fail_expected(code::kInvalidArgument, "an array", "ops[" + std::to_string(i) + "]", "other");
      Napi::Array op = opv.As<Napi::Array>();
      const std::string name = op.Get(0u).ToString().Utf8Value();
      auto num = [&](uint32_t k) { return op.Get(k).IsNumber() ? op.Get(k).As<Napi::Number>().Int64Value() : -1; };
      Napi::Object state = Napi::Object::New(env);
      if (name == "alloc") {
        const int64_t bytes = num(1), align = op.Length() > 2 ? num(2) : 64;
        if (bytes < 0 || bytes > (int64_t(1) << 31)) fail(code::kInvalidArgument, "alloc bytes out of range");
        auto* p = static_cast<unsigned char*>(arena.alloc((size_t)bytes, (size_t)align));
        const unsigned char fill = (unsigned char)(i * 37 + 11);
        std::memset(p, fill, (size_t)bytes);
        live.push_back({p, (size_t)bytes, fill, i});
        state.Set("address", Napi::BigInt::New(env, (uint64_t) reinterpret_cast<uintptr_t>(p)));
      } else if (name == "mark") {
        marks.emplace_back(arena.mark(), i);
        state.Set("mark", (double)(marks.size() - 1));
      } else if (name == "reset" || name == "resetAll" || name == "release") {
        if (name == "reset") {
          const int64_t m = num(1);
          if (m < 0 || m >= (int64_t)marks.size()) fail(code::kInvalidArgument, "unknown mark");
          arena.reset(marks[(size_t)m].first);
          // Blocks allocated after the mark are dead; those before it must survive untouched.
          const size_t since = marks[(size_t)m].second;
          std::vector<Block> kept;
          for (const Block& b : live)
            if (b.op < since) kept.push_back(b);
          live.swap(kept);
        } else {
          if (name == "resetAll")
            arena.reset();
          else
            arena.release();
          live.clear();
        }
      } else {
        fail(code::kInvalidArgument, "unknown arena op " + name);
      }
      state.Set("inUse", (double)arena.in_use());
      state.Set("peak", (double)arena.peak());
      state.Set("reserved", (double)arena.reserved());
      states.Set(i, state);
    }
    std::string corrupted;
    for (const Block& b : live)
      for (size_t k = 0; k < b.bytes; ++k)
        if (b.p[k] != b.fill) {
          corrupted = "op " + std::to_string(b.op) + " byte " + std::to_string(k);
          break;
        }
    Napi::Object out = Napi::Object::New(env);
    out.Set("states", states);
    out.Set("corrupted", corrupted);
    return out;
  });
}

void Init(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("parallelFor", Napi::Function::New(env, ParallelFor, "parallelFor"));
  t.Set("runTasks", Napi::Function::New(env, RunTasks, "runTasks"));
  t.Set("parallelThrow", Napi::Function::New(env, ParallelThrow, "parallelThrow"));
  t.Set("parallelRethrow", Napi::Function::New(env, ParallelRethrow, "parallelRethrow"));
  t.Set("nested", Napi::Function::New(env, Nested, "nested"));
  t.Set("arena", Napi::Function::New(env, ArenaScript, "arena"));
  t.Set("hardwareThreads", ThreadPool::hardware_threads());
  exports.Set("coreTest", t);
}

}  // namespace
}  // namespace nd::addon

ND_REGISTER_BINDING("core-test", nd::addon::Init);
