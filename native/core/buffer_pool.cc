#include "core/buffer_pool.h"

#include <algorithm>
#include <new>
#include <string>

#include "core/errors.h"

namespace nd {

float* BufferPool::acquire(size_t n, size_t* capacity) {
  n = std::max<size_t>(n, 1);
  // Best fit among the free buffers.
  size_t best = free_.size();
  for (size_t i = 0; i < free_.size(); ++i)
    if (free_[i].capacity >= n && (best == free_.size() || free_[i].capacity < free_[best].capacity)) best = i;
  Slot slot;
  if (best < free_.size()) {
    slot = std::move(free_[best]);
    free_.erase(free_.begin() + (ptrdiff_t)best);
  } else {
    // Resolution only grows along the decoder: free buffers too small for this request would
    // mostly stay unused, so they go back to the system before a larger one is allocated.
    free_.erase(std::remove_if(free_.begin(), free_.end(), [&](const Slot& s) { return s.capacity < n; }), free_.end());
    slot.data.reset(new (std::nothrow) float[n]);
    if (!slot.data)
      fail(code::kOutOfMemory,
           "Could not allocate " + std::to_string(n * sizeof(float)) + " bytes of activation memory");
    slot.capacity = n;
  }
  float* p = slot.data.get();
  *capacity = slot.capacity;
  live_bytes_ += slot.capacity * sizeof(float);
  peak_bytes_ = std::max(peak_bytes_, live_bytes_);
  used_.push_back(std::move(slot));
  return p;
}

void BufferPool::release(float* data, size_t capacity) {
  for (size_t i = 0; i < used_.size(); ++i)
    if (used_[i].data.get() == data) {
      free_.push_back(std::move(used_[i]));
      used_.erase(used_.begin() + (ptrdiff_t)i);
      live_bytes_ -= capacity * sizeof(float);
      return;
    }
}

PooledBuffer::PooledBuffer(BufferPool& pool, Shape shape) : pool_(&pool), shape_(std::move(shape)) {
  data_ = pool.acquire((size_t)nd::numel(shape_), &capacity_);
}

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    data_ = o.data_;
    capacity_ = o.capacity_;
    shape_ = std::move(o.shape_);
    o.pool_ = nullptr;
    o.data_ = nullptr;
    o.capacity_ = 0;
  }
  return *this;
}

void PooledBuffer::reshape(Shape s) {
  if ((size_t)nd::numel(s) > capacity_)
    fail(code::kInternal, "VAE activation reshape to " + shape_str(s) + " exceeds its capacity");
  shape_ = std::move(s);
}

void PooledBuffer::reset() {
  if (pool_ && data_) pool_->release(data_, capacity_);
  pool_ = nullptr;
  data_ = nullptr;
  capacity_ = 0;
}

}  // namespace nd
