// Activation buffers of one VAE decode/encode. The full-resolution decoder levels move
// 128–256 MiB tensors; as std::vector (Buffer) each one was zero-filled and, being above
// malloc's mmap threshold, page-faulted in fresh on every allocation — about a tenth of a
// 512² decode. An ActPool hands out uninitialised buffers and takes them back when their
// Act dies, so a decode touches a handful of buffers once and reuses them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace nd::vae {

class ActPool {
 public:
  ActPool() = default;
  ActPool(const ActPool&) = delete;
  ActPool& operator=(const ActPool&) = delete;

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

// A move-only NCHW activation borrowed from an ActPool; returned to it on destruction.
class Act {
 public:
  Act() = default;
  Act(ActPool& pool, Shape shape);
  ~Act() { reset(); }
  Act(Act&& o) noexcept { *this = std::move(o); }
  Act& operator=(Act&& o) noexcept;
  Act(const Act&) = delete;
  Act& operator=(const Act&) = delete;

  float* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  int64_t numel() const { return nd::numel(shape_); }
  size_t capacity() const { return capacity_; }
  // Reuses the storage for another tensor of at most capacity() floats.
  void reshape(Shape s);
  void reset();

 private:
  ActPool* pool_ = nullptr;
  float* data_ = nullptr;
  size_t capacity_ = 0;
  Shape shape_;
};

}  // namespace nd::vae
