// Exact-shape weight lookups for the model graphs. Every tensor a graph uses is
// looked up and checked once, at construction, so a wrong checkpoint fails with a
// message naming the tensor instead of computing garbage later.
#pragma once
#include <string>
#include <vector>

#include "cpu/ops.h"
#include "models/weights.h"

namespace nd {

// The tensor `name` with shape `shape` (or `alt` when given, e.g. [C, C] for a 1x1 conv stored as Linear).
inline const Tensor& checked_tensor(const WeightStore& store, const std::string& name, const Shape& shape,
                                    const Shape& alt = {}) {
  const Tensor& t = store.get(name);
  if (t.shape != shape && (alt.empty() || t.shape != alt))
    fail(code::kShapeMismatch, "Expected shape " + shape_str(shape) + (alt.empty() ? "" : " or " + shape_str(alt)) +
                                   " for weight \"" + name + "\" but received " + shape_str(t.shape));
  return t;
}

// A matrix / conv kernel used zero-copy in its file dtype (f32, f16 or bf16).
inline cpu::WeightRef checked_matrix(const WeightStore& store, const std::string& name, const Shape& shape,
                                     const Shape& alt = {}) {
  const Tensor& t = checked_tensor(store, name, shape, alt);
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
    fail(code::kUnsupported,
         "Expected an F32, F16 or BF16 tensor for weight \"" + name + "\" but received " + dtype_name(t.dtype));
  return {t.data, t.dtype};
}

// A small parameter (bias, norm scale, embedding table) widened to f32 once and cached by the store.
inline const float* checked_f32(const WeightStore& store, const std::string& name, const Shape& shape) {
  checked_tensor(store, name, shape);
  return store.f32(name).data();
}

}  // namespace nd
