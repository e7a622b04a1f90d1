#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device.h"
#include "backend/cuda/ops.h"
#include "backend/cuda/selftest.h"
#include "core/dtype.h"

namespace nd::cuda {
namespace {

std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.f) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

template <typename T>
DeviceBuffer to_device(const std::vector<T>& host) {
  DeviceBuffer b(host.size() * sizeof(T));
  b.upload(host.data(), host.size() * sizeof(T));
  return b;
}

std::vector<float> from_device(const DeviceBuffer& b, size_t n) {
  std::vector<float> out(n);
  b.download(out.data(), n * sizeof(float));
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& ref) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs((double)a[i] - ref[i]));
  return m;
}

// out = a · wᵀ + bias in double, with w given already widened.
std::vector<double> gemm_reference(const std::vector<float>& a, const std::vector<float>& w,
                                   const std::vector<float>& bias, int m, int n, int k) {
  std::vector<double> out((size_t)m * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = bias[j];
      for (int p = 0; p < k; ++p) s += (double)a[(size_t)i * k + p] * w[(size_t)j * k + p];
      out[(size_t)i * n + j] = s;
    }
  return out;
}

}  // namespace

SelfTestResult self_test() {
  SelfTestResult r;
  r.device = require_device().name;
  std::mt19937 rng(1234);

  {  // GEMM on shapes that leave partial tiles in every dimension.
    const int m = 67, n = 45, k = 131;
    const auto a = random_vector((size_t)m * k, rng), wf = random_vector((size_t)n * k, rng),
               bias = random_vector(n, rng);
    std::vector<uint16_t> wh(wf.size());
    std::vector<float> wh_wide(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) {
      wh[i] = f32_to_f16(wf[i]);
      wh_wide[i] = f16_to_f32(wh[i]);
    }
    DeviceBuffer da = to_device(a), dwh = to_device(wh), dwf = to_device(wf), db = to_device(bias);
    DeviceBuffer dout((size_t)m * n * sizeof(float));
    gemm_f32_f16w(da.as<float>(), dwh.as<uint16_t>(), db.as<float>(), dout.as<float>(), m, n, k);
    synchronize();
    r.gemm_f16w_max_abs_err = max_abs_diff(from_device(dout, (size_t)m * n), gemm_reference(a, wh_wide, bias, m, n, k));
    gemm_f32_f32w(da.as<float>(), dwf.as<float>(), db.as<float>(), dout.as<float>(), m, n, k);
    synchronize();
    r.gemm_f32w_max_abs_err = max_abs_diff(from_device(dout, (size_t)m * n), gemm_reference(a, wf, bias, m, n, k));
  }

  {  // Elementwise ops, n not a multiple of the block size.
    const size_t n = 100003;
    const auto x = random_vector(n, rng, 6.f), y = random_vector(n, rng, 6.f);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = f32_to_f16(x[i]);
    DeviceBuffer dx = to_device(x), dy = to_device(y), dh = to_device(h), dout(n * sizeof(float));
    std::vector<double> ref(n);
    double err = 0;
    add(dx.as<float>(), dy.as<float>(), dout.as<float>(), (int64_t)n);
    synchronize();
    for (size_t i = 0; i < n; ++i) ref[i] = (double)x[i] + y[i];
    err = std::max(err, max_abs_diff(from_device(dout, n), ref));
    silu(dx.as<float>(), dout.as<float>(), (int64_t)n);
    synchronize();
    for (size_t i = 0; i < n; ++i) ref[i] = x[i] / (1.0 + std::exp(-(double)x[i]));
    err = std::max(err, max_abs_diff(from_device(dout, n), ref));
    gelu(dx.as<float>(), dout.as<float>(), (int64_t)n);
    synchronize();
    for (size_t i = 0; i < n; ++i) ref[i] = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    err = std::max(err, max_abs_diff(from_device(dout, n), ref));
    widen_f16(dh.as<uint16_t>(), dout.as<float>(), (int64_t)n);
    synchronize();
    for (size_t i = 0; i < n; ++i) ref[i] = f16_to_f32(h[i]);
    err = std::max(err, max_abs_diff(from_device(dout, n), ref));
    r.elementwise_max_abs_err = err;
  }

  {  // Throughput: 1024³ with f16 weights.
    const int s = 1024;
    const auto a = random_vector((size_t)s * s, rng);
    std::vector<uint16_t> w((size_t)s * s);
    for (auto& v : w) v = f32_to_f16((float)(rng() % 1000) / 1000.f - 0.5f);
    DeviceBuffer da = to_device(a), dw = to_device(w), dout((size_t)s * s * sizeof(float));
    cudaEvent_t start, stop;
    ND_CUDA_CHECK(cudaEventCreate(&start));
    ND_CUDA_CHECK(cudaEventCreate(&stop));
    float best_ms = 1e30f;
    for (int rep = 0; rep < 6; ++rep) {  // the first run warms up
      ND_CUDA_CHECK(cudaEventRecord(start));
      gemm_f32_f16w(da.as<float>(), dw.as<uint16_t>(), nullptr, dout.as<float>(), s, s, s);
      ND_CUDA_CHECK(cudaEventRecord(stop));
      ND_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      ND_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      if (rep > 0) best_ms = std::min(best_ms, ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    r.gemm_gflops = 2.0 * s * s * s / (best_ms * 1e6);
  }
  return r;
}

}  // namespace nd::cuda
