// Convolution as implicit GEMM: out[Cout, Ho·Wo] = W[Cout, Cin·kh·kw] · col[Cin·kh·kw, Ho·Wo] per image,
// where the col operand is never materialised — the B packer gathers each K-block × 32-position
// panel straight from the NCHW input (masked loads supply the zero padding). A 1×1 stride-1
// convolution is a plain GEMM on the NCHW input. Bias is fused into the tile store.
#include <string>

#include "core/errors.h"
#include "cpu/gemm_driver.h"
#include "cpu/ops.h"

namespace nd::cpu {

namespace {

void check_positive(int64_t v, const char* name) {
  if (v < 1) fail_expected(code::kInvalidArgument, "a positive integer", name, std::to_string(v));
}

}  // namespace

void conv2d(ThreadPool& pool, const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight,
            int64_t Cout, int kh, int kw, int stride, int pad, const float* bias, float* y) {
  check_positive(B, "conv2d batch");
  check_positive(Cin, "conv2d Cin");
  check_positive(H, "conv2d H");
  check_positive(W, "conv2d W");
  check_positive(Cout, "conv2d Cout");
  check_positive(kh, "conv2d kernel height");
  check_positive(kw, "conv2d kernel width");
  check_positive(stride, "conv2d stride");
  if (pad < 0) fail_expected(code::kInvalidArgument, "a non-negative padding", "conv2d pad", std::to_string(pad));
  if (weight.dtype != DType::F32 && weight.dtype != DType::F16 && weight.dtype != DType::BF16)
    fail_expected(code::kUnsupported, "an F32, F16 or BF16 weight", "conv2d weight", dtype_name(weight.dtype));
  const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
  if (H + 2 * pad < kh || W + 2 * pad < kw || Ho < 1 || Wo < 1)
    fail_expected(code::kInvalidArgument, "an input at least as large as the kernel", "conv2d input",
                  std::to_string(H) + "x" + std::to_string(W));
  if (!x || !weight.data || !y) fail(code::kInvalidArgument, "conv2d: null operand");

  const gemm::Kernels& kn = gemm::active_kernels();
  const int64_t K = Cin * kh * kw, N = Ho * Wo;
  const gemm::Operand a = gemm::Operand::of_rows(weight.data, weight.dtype, K);  // W as [Cout, K]
  gemm::Epilogue ep;
  ep.bias_m = bias;
  const bool pointwise = kh == 1 && kw == 1 && stride == 1 && pad == 0;
  for (int64_t b = 0; b < B; ++b) {
    const float* xb = x + b * Cin * H * W;
    gemm::Operand col;
    if (pointwise) {
      col = gemm::Operand::of_cols(xb, H * W);  // x[Cin, HW]: element (position, ci) at ci·HW + position
    } else {
      gemm::ConvSource s;
      s.x = xb;
      s.cin = Cin;
      s.h = H;
      s.w = W;
      s.ho = Ho;
      s.wo = Wo;
      s.kh = kh;
      s.kw = kw;
      s.stride = stride;
      s.pad = pad;
      col = gemm::Operand::of_conv(s);
    }
    gemm::run(pool, kn, Cout, N, K, a, col, y + b * Cout * N, N, ep);
  }
}

}  // namespace nd::cpu
