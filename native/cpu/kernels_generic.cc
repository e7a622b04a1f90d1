// The vectorised kernels compiled for portable C++ (any CPU). Functions carry the ISA's target
// attribute instead of the whole file taking -m flags, so the binary still runs on
// any x86-64; kernels.cc hands this table out only when the CPU supports it.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "cpu/kernels.h"

#include "cpu/simd/generic.h"

namespace nd::cpu::isa_generic {
namespace {
constexpr const char* kIsaName = "generic";
#include "cpu/kernels/attention.inc"
#include "cpu/kernels/elementwise.inc"
#include "cpu/kernels/norm.inc"
#include "cpu/simd/math.inc"
}  // namespace
#include "cpu/kernels/table.inc"
}  // namespace nd::cpu::isa_generic
