// What one model call computes with, handed in at compute time: the backend, the process compute pool
// (core/threadpool.h), the call's activation arena and its cancellation flag. Every nn layer's forward takes it.
#pragma once
#include <cstddef>

#include "backend/backend.h"
#include "core/arena.h"
#include "core/cancel.h"
#include "core/threadpool.h"

namespace nd {

struct Compute {
  const Backend& be;
  ThreadPool& pool;
  Arena& arena;
  CancelFlag cancel;

  float* alloc(size_t n) { return be.alloc(arena, n); }
  // Throws ERR_ABORTED when the caller asked to stop; the graphs call it between layers.
  void check_cancel() const { cancel.check(); }
};

}  // namespace nd
