// The vectorised kernels compiled for AArch64 NEON (4 lanes, 32 registers: the attention kernels
// take their widest register blocks). Compiled to nothing on other targets.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"
#if defined(__aarch64__)
#include "cpu/simd/neon.h"

namespace nd::cpu::isa_neon {
namespace {
constexpr const char* kIsaName = "neon";
// Order matters: the kernels use the math helpers.
#include "cpu/simd/math.inc"

#include "cpu/kernels/attention.inc"
#include "cpu/kernels/elementwise.inc"
#include "cpu/kernels/norm.inc"
}  // namespace
#include "cpu/kernels/table.inc"
}  // namespace nd::cpu::isa_neon
#endif  // aarch64
