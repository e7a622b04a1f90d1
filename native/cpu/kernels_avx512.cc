// The vectorised kernels compiled for AVX-512F/BW/VL/DQ + FMA. Functions carry the ISA's target
// attribute instead of the whole file taking -m flags, so the binary still runs on
// any x86-64; kernels.cc hands this table out only when the CPU supports it.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include "cpu/simd/avx512.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wmaybe-uninitialized
// flags at every inlined use (a known false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace nd::cpu::isa_avx512 {
namespace {
constexpr const char* kIsaName = "avx512";
#include "cpu/kernels/attention.inc"
#include "cpu/kernels/elementwise.inc"
#include "cpu/kernels/norm.inc"
#include "cpu/simd/math.inc"
}  // namespace
#include "cpu/kernels/table.inc"
}  // namespace nd::cpu::isa_avx512
#endif  // x86-64
