// 64-byte-aligned heap blocks for kernel scratch: std::aligned_alloc where the C library has it,
// _aligned_malloc on Windows (whose CRT has no aligned_alloc, and whose blocks need _aligned_free).
#pragma once
#include <cstddef>
#include <cstdlib>
#if defined(_WIN32)
#include <malloc.h>
#endif

namespace nd {

// bytes is rounded up to a multiple of align; nullptr when out of memory.
inline void* aligned_malloc(size_t align, size_t bytes) {
  bytes = (bytes + align - 1) / align * align;
#if defined(_WIN32)
  return _aligned_malloc(bytes, align);
#else
  return std::aligned_alloc(align, bytes);
#endif
}

inline void aligned_free(void* p) {
#if defined(_WIN32)
  _aligned_free(p);
#else
  std::free(p);
#endif
}

// Per-thread scratch, grown on demand and kept for the thread's lifetime (kernels run hundreds of
// times per model call and must not allocate each time). Freed when its thread exits, except on
// Windows: there a thread_local with a destructor in a MinGW-built DLL runs that destructor at
// process exit for threads ExitProcess already killed (Node's libuv workers), which crashes; so there
// the block is left to the OS (pool threads exit only when their model is disposed).
struct ThreadScratch {
  float* data = nullptr;
  size_t floats = 0;
#if !defined(_WIN32)
  ~ThreadScratch() { aligned_free(data); }
#endif
  // At least n floats, 64-byte aligned; nullptr when out of memory.
  float* get(size_t n) {
    if (n > floats) {
      aligned_free(data);
      data = static_cast<float*>(aligned_malloc(64, n * sizeof(float)));
      floats = data ? n : 0;
    }
    return data;
  }
};

}  // namespace nd
