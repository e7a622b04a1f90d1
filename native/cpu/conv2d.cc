// Placeholder: output-channel-parallel reference convolution until implicit GEMM lands.
#include "cpu/ops.h"
#include "cpu/reference.h"

namespace nd::cpu {

void conv2d(ThreadPool& pool, const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight,
            int64_t Cout, int kh, int kw, int stride, int pad, const float* bias, float* y) {
  const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
  const size_t wstride = (size_t)(Cin * kh * kw) * dtype_size(weight.dtype);
  for (int64_t b = 0; b < B; ++b)
    pool.parallel_for(Cout, [&](int64_t c0, int64_t c1, int) {
      WeightRef w{static_cast<const unsigned char*>(weight.data) + c0 * wstride, weight.dtype};
      // One output channel block at a time: y[b, c0:c1] is contiguous.
      ref::conv2d(x + b * Cin * H * W, 1, Cin, H, W, w, c1 - c0, kh, kw, stride, pad, bias ? bias + c0 : nullptr,
                  y + (b * Cout + c0) * Ho * Wo);
    });
}

}  // namespace nd::cpu
