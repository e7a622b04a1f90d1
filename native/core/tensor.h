// A tensor is a dtype, a shape (PyTorch order: NCHW, last dimension contiguous)
// and a pointer. Weight tensors point into a read-only mapped checkpoint and keep
// the mapping alive through `owner`; activations are plain f32 buffers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/errors.h"

namespace nd {

using Shape = std::vector<int64_t>;

inline int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

inline std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;
  std::shared_ptr<const void> owner;  // keeps the mapping / buffer alive

  int64_t numel() const { return nd::numel(shape); }
  size_t nbytes() const { return (size_t)numel() * dtype_size(dtype); }
  int64_t dim(size_t i) const { return shape.at(i); }
  size_t rank() const { return shape.size(); }
  const float* f32() const { return static_cast<const float*>(data); }

  // Widened copy of a small float tensor (biases, norm scales).
  std::vector<float> to_f32() const {
    std::vector<float> out((size_t)numel());
    for (size_t i = 0; i < out.size(); ++i) out[i] = load_as_f32(data, dtype, i);
    return out;
  }
};

// Owned f32 activation buffer.
struct Buffer {
  Shape shape;
  std::vector<float> values;

  Buffer() = default;
  explicit Buffer(Shape s) : shape(std::move(s)), values((size_t)nd::numel(shape)) {}
  float* data() { return values.data(); }
  const float* data() const { return values.data(); }
  int64_t numel() const { return (int64_t)values.size(); }
  int64_t dim(size_t i) const { return shape.at(i); }
};

}  // namespace nd
