// A quick correctness and speed check of the CUDA kernels against a double-precision CPU
// reference, on awkward (non-multiple-of-tile) shapes. Needs a device (ERR_NO_CUDA otherwise).
#pragma once
#include <string>

namespace nd::cuda {

struct SelfTestResult {
  std::string device;
  double gemm_f16w_max_abs_err = 0;  // [67, 131] · [45, 131]ᵀ + bias, f16 weights
  double gemm_f32w_max_abs_err = 0;
  double elementwise_max_abs_err = 0;  // add, silu, gelu, f16 widening
  double gemm_gflops = 0;              // 1024³ with f16 weights, best of 5
};

SelfTestResult self_test();

}  // namespace nd::cuda
