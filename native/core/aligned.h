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

}  // namespace nd
