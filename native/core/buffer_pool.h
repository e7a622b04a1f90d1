// The second activation allocator (the first is core/arena.h), for graphs whose blocks consume their input and
// return a new tensor (the VAE): a BufferPool hands out uninitialised buffers and takes them back when their
// PooledBuffer dies, so a decode touches a handful of buffers once and reuses them. The full-resolution decoder
// levels move 128–256 MiB tensors; as std::vector (Buffer) each one was zero-filled and, being above malloc's
// mmap threshold, page-faulted in fresh on every allocation — about a tenth of a 512² decode. A bump arena
// cannot free a consumed input under a live output, which is why this exists beside it. The layers see only
// the pointer and the shape (nn/layers.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace nd {

class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least n floats (contents undefined); *capacity receives its size.
  float* acquire(size_t n, size_t* capacity);
  void release(float* data, size_t capacity);
  size_t live_bytes() const { return live_bytes_; }
  size_t peak_bytes() const { return peak_bytes_; }

 private:
  struct Slot {
    std::unique_ptr<float[]> data;
    size_t capacity = 0;
  };
  std::vector<Slot> free_;
  std::vector<Slot> used_;
  size_t live_bytes_ = 0, peak_bytes_ = 0;
};

// A move-only NCHW activation borrowed from a BufferPool; returned to it on destruction.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(BufferPool& pool, Shape shape);
  ~PooledBuffer() { reset(); }
  PooledBuffer(PooledBuffer&& o) noexcept { *this = std::move(o); }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;

  float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  int64_t numel() const { return nd::numel(shape_); }
  size_t capacity() const { return capacity_; }
  // Reuses the storage for another tensor of at most capacity() floats.
  void reshape(Shape s);
  void reset();

 private:
  BufferPool* pool_ = nullptr;
  float* data_ = nullptr;
  size_t capacity_ = 0;
  Shape shape_;
};

}  // namespace nd
