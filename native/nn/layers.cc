#include "nn/layers.h"

#include <cmath>

#include "nn/profile.h"

namespace nd::nn {

const Tensor& checked_tensor(const WeightStore& store, const std::string& name, const Shape& shape, const Shape& alt) {
  const Tensor& t = store.get(name);
  if (t.shape != shape && (alt.empty() || t.shape != alt))
    fail(code::kShapeMismatch, "Expected shape " + shape_str(shape) + (alt.empty() ? "" : " or " + shape_str(alt)) +
                                   " for weight \"" + name + "\" but received " + shape_str(t.shape));
  return t;
}

WeightRef checked_matrix(const WeightStore& store, const std::string& name, const Shape& shape, const Shape& alt) {
  const Tensor& t = checked_tensor(store, name, shape, alt);
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16)
    fail(code::kUnsupported,
         "Expected an F32, F16 or BF16 tensor for weight \"" + name + "\" but received " + dtype_name(t.dtype));
  return {t.data, t.dtype};
}

const float* checked_f32(const WeightStore& store, const std::string& name, const Shape& shape) {
  checked_tensor(store, name, shape);
  return store.f32(name).data();
}

// ---------------------------------------------------------------------------------------------
Linear Linear::load(const WeightStore& w, const std::string& name, int64_t out, int64_t in, bool with_bias,
                    const Shape& stored) {
  Linear l;
  l.weight = checked_matrix(w, name + ".weight", stored.empty() ? Shape{out, in} : stored);
  if (with_bias) l.bias = checked_f32(w, name + ".bias", {out});
  l.in = in;
  l.out = out;
  return l;
}

void Linear::forward(Compute& c, const float* x, int64_t M, float* y, int64_t ldy, bool accumulate, int64_t ldx) const {
  ND_TIMED(Linear, c.be.linear(c.pool, x, M, in, ldx ? ldx : in, weight, out, bias, y, ldy ? ldy : out, accumulate));
}

Conv2d Conv2d::load(const WeightStore& w, const std::string& name, int64_t cout, int64_t cin, int kernel, int stride,
                    int pad, const Shape& alt) {
  Conv2d c;
  c.weight = checked_matrix(w, name + ".weight", {cout, cin, kernel, kernel}, alt);
  c.bias = checked_f32(w, name + ".bias", {cout});
  c.cin = cin;
  c.cout = cout;
  c.kernel = kernel;
  c.stride = stride;
  c.pad = pad < 0 ? kernel / 2 : pad;
  c.present = true;
  return c;
}

void Conv2d::forward(Compute& c, const float* x, int64_t B, int64_t H, int64_t W, float* y,
                     const float* bias_override) const {
  ND_TIMED(Conv, c.be.conv2d(c.pool, x, B, cin, H, W, weight, cout, kernel, kernel, stride, pad,
                             bias_override ? bias_override : bias, y));
}

GroupNorm GroupNorm::load(const WeightStore& w, const std::string& name, int64_t channels, int groups, float eps) {
  if (groups <= 0 || channels % groups != 0)
    fail_expected(code::kInvalidArgument, "a group count dividing " + std::to_string(channels) + " channels",
                  "config.normGroups (at \"" + name + "\")", std::to_string(groups));
  GroupNorm g;
  g.weight = checked_f32(w, name + ".weight", {channels});
  g.bias = checked_f32(w, name + ".bias", {channels});
  g.channels = channels;
  g.groups = groups;
  g.eps = eps;
  return g;
}

void GroupNorm::forward(Compute& c, const float* x, float* y, int64_t B, int64_t HW, bool silu) const {
  ND_TIMED(GroupNorm, c.be.group_norm(c.pool, x, y, B, channels, HW, groups, weight, bias, eps, silu));
}

LayerNorm LayerNorm::load(const WeightStore& w, const std::string& name, int64_t channels, float eps) {
  LayerNorm l;
  l.weight = checked_f32(w, name + ".weight", {channels});
  l.bias = checked_f32(w, name + ".bias", {channels});
  l.channels = channels;
  l.eps = eps;
  return l;
}

void LayerNorm::forward(Compute& c, const float* x, float* y, int64_t M) const {
  ND_TIMED(LayerNorm, c.be.layer_norm(c.pool, x, y, M, channels, weight, bias, eps));
}

void timestep_embedding(const double* timesteps, int64_t B, int64_t dim, float* out) {
  // Mirrors diffusers' float32 arithmetic (exponent, frequency and product rounded to f32) so
  // that large timesteps (t * f up to 1000 rad) keep their phase.
  const int64_t half = dim / 2;
  const float log_period = (float)-std::log(10000.0);
  for (int64_t b = 0; b < B; ++b) {
    const float t = (float)timesteps[b];
    float* row = out + b * dim;  // [dim]
    for (int64_t i = 0; i < half; ++i) {
      const float exponent = ((float)i * log_period) / (float)half;
      const float freq = (float)std::exp((double)exponent);
      const float arg = t * freq;
      row[i] = (float)std::cos((double)arg);         // flip_sin_to_cos: cos first
      row[half + i] = (float)std::sin((double)arg);  // then sin
    }
    if (dim % 2) row[dim - 1] = 0.f;  // odd dims are zero-padded
  }
}

}  // namespace nd::nn
