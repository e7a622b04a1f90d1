// CUDA runtime errors as typed nd::Errors: allocation failures are ERR_OUT_OF_MEMORY, a missing
// device or driver is ERR_NO_CUDA, anything else ERR_INTERNAL with the runtime's own text.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "core/errors.h"

namespace nd::cuda {

[[noreturn]] inline void fail_cuda(cudaError_t err, const char* what) {
  const std::string msg =
      std::string("CUDA error in ") + what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation) fail(code::kOutOfMemory, msg);
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) fail(code::kNoCuda, msg);
  fail(code::kInternal, msg);
}

}  // namespace nd::cuda

#define ND_CUDA_CHECK(expr)                                                      \
  do {                                                                           \
    const cudaError_t nd_cuda_err_ = (expr);                                     \
    if (nd_cuda_err_ != cudaSuccess) ::nd::cuda::fail_cuda(nd_cuda_err_, #expr); \
  } while (0)
