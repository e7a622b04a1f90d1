#include "cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace nd::cpu {

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  __builtin_cpu_init();
  // libgcc's checks include the OS (XCR0) enabling the ymm/zmm state.
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#if defined(__clang__) || __GNUC__ >= 11
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#endif
  // F16C has no __builtin_cpu_supports name in older compilers: read cpuid leaf 1 ECX bit 29.
  unsigned eax = 1, ebx = 0, ecx = 0, edx = 0;
  __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "c"(0));
  f.f16c = (ecx >> 29) & 1u;
  f.f16c = f.f16c && __builtin_cpu_supports("avx");
#endif
  return f;
}

Isa env_limit() {
  const char* v = std::getenv("ND_CPU_ISA");
  if (!v) return Isa::Avx512;
  if (!std::strcmp(v, "scalar")) return Isa::Scalar;
  if (!std::strcmp(v, "avx2")) return Isa::Avx2;
  return Isa::Avx512;
}

std::atomic<int> limit_override{(int)Isa::Avx512};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

Isa best_isa() {
  static const Isa isa = [] {
#if defined(__aarch64__)
    return Isa::Neon;
#endif
    const CpuFeatures& f = cpu_features();
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c) return Isa::Avx512;
    if (f.avx2 && f.fma && f.f16c) return Isa::Avx2;
    return Isa::Scalar;
  }();
  return isa;
}

Isa active_isa() {
  static const Isa env = env_limit();
  const int o = limit_override.load(std::memory_order_relaxed);
  if (best_isa() == Isa::Neon) return env == Isa::Scalar || o == (int)Isa::Scalar ? Isa::Scalar : Isa::Neon;
  int isa = (int)best_isa();
  if ((int)env < isa) isa = (int)env;
  if (o < isa) isa = o;
  return (Isa)isa;
}

void set_isa_limit(Isa limit) { limit_override.store((int)limit, std::memory_order_relaxed); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Neon: return "neon";
    default: return "scalar";
  }
}

}  // namespace nd::cpu
