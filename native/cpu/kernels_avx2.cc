// The vectorised kernels compiled for AVX2 + FMA. Functions carry the ISA's target
// attribute instead of the whole file taking -m flags, so the binary still runs on
// any x86-64; kernels.cc hands this table out only when the CPU supports it.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "cpu/simd/avx2.h"

namespace nd::cpu::isa_avx2 {
namespace {
constexpr const char* kIsaName = "avx2";
#include "cpu/kernels/attention.inc"
#include "cpu/kernels/elementwise.inc"
#include "cpu/kernels/norm.inc"
#include "cpu/simd/math.inc"
}  // namespace
#include "cpu/kernels/table.inc"
}  // namespace nd::cpu::isa_avx2
#endif  // x86-64
