// Run-time CPU feature detection (cpuid via __builtin_cpu_supports) and the ISA level the
// kernels dispatch on. The binary is built for baseline x86-64; wider kernels are compiled
// per function with target attributes and chosen here at run time.
#pragma once

namespace nd::cpu {

// Scalar < Avx2 < Avx512 are the x86-64 levels; Neon is AArch64's one level (part of its base ISA).
// A limit caps the x86 levels; on AArch64 only a Scalar limit changes anything.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2, Neon = 3 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false;
};

const CpuFeatures& cpu_features();

// Widest ISA level whose kernels this CPU (and OS) can run.
Isa best_isa();
// best_isa() capped by the ND_CPU_ISA environment variable (scalar|avx2|avx512|neon) and set_isa_limit().
Isa active_isa();
// Caps the ISA the kernels use (tests and benchmarks exercise the narrower paths). Not thread-safe
// against concurrent kernel calls; set it between calls.
void set_isa_limit(Isa limit);
const char* isa_name(Isa isa);

}  // namespace nd::cpu
