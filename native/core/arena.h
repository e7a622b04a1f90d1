// Bump allocator for per-step activations: allocations are 64-byte aligned and
// released all at once (reset to a mark), so a U-Net pass does no malloc in its
// hot loop and peak activation memory is measurable.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/errors.h"

namespace nd {

class Arena {
 public:
  explicit Arena(size_t chunk_bytes = size_t(64) << 20) : chunk_bytes_(chunk_bytes) {}
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* alloc(size_t bytes, size_t align = 64) {
    if (align == 0 || (align & (align - 1)) != 0)
      fail(code::kInvalidArgument, "Arena alignment must be a power of two");
    for (;;) {
      if (current_ < chunks_.size()) {
        Chunk& c = chunks_[current_];
        const uintptr_t base = reinterpret_cast<uintptr_t>(c.data.get());
        const uintptr_t p = (base + c.used + align - 1) & ~(uintptr_t)(align - 1);
        if (p + bytes <= base + c.size) {
          in_use_ += (p + bytes) - (base + c.used);
          c.used = (p + bytes) - base;
          if (in_use_ > peak_) peak_ = in_use_;
          return reinterpret_cast<void*>(p);
        }
        if (current_ + 1 < chunks_.size()) {
          ++current_;
          continue;
        }
      }
      const size_t size = bytes + align > chunk_bytes_ ? bytes + align : chunk_bytes_;
      Chunk c;
      c.data.reset(new (std::nothrow) unsigned char[size]);
      if (!c.data)
        fail(code::kOutOfMemory, "Could not allocate " + std::to_string(size) + " bytes of activation memory");
      c.size = size;
      chunks_.push_back(std::move(c));
      current_ = chunks_.size() - 1;
      reserved_ += size;
    }
  }

  float* alloc_f32(size_t count) { return static_cast<float*>(alloc(count * sizeof(float))); }

  struct Mark {
    size_t chunk, used, in_use;
  };
  Mark mark() const { return {current_, current_ < chunks_.size() ? chunks_[current_].used : 0, in_use_}; }
  void reset(const Mark& m) {
    for (size_t i = m.chunk + 1; i < chunks_.size(); ++i) chunks_[i].used = 0;
    current_ = m.chunk;
    if (current_ < chunks_.size()) chunks_[current_].used = m.used;
    in_use_ = m.in_use;
  }
  void reset() { reset(Mark{0, 0, 0}); }

  size_t in_use() const { return in_use_; }
  size_t peak() const { return peak_; }
  size_t reserved() const { return reserved_; }
  // Frees every chunk (after an abort or when the model is disposed).
  void release() {
    chunks_.clear();
    current_ = 0;
    in_use_ = reserved_ = 0;
  }

 private:
  struct Chunk {
    std::unique_ptr<unsigned char[]> data;
    size_t size = 0, used = 0;
  };
  size_t chunk_bytes_;
  std::vector<Chunk> chunks_;
  size_t current_ = 0, in_use_ = 0, peak_ = 0, reserved_ = 0;
};

}  // namespace nd
