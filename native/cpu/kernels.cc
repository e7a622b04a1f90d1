#include "cpu/kernels.h"

#include <atomic>
#include <cstring>

namespace nd::cpu {

namespace isa_generic {
const KernelTable& table();
}
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
namespace isa_avx2 {
const KernelTable& table();
}
namespace isa_avx512 {
const KernelTable& table();
}
#endif
#if defined(__aarch64__)
namespace isa_neon {
const KernelTable& table();
}
#endif

const KernelTable& kernels_generic() { return isa_generic::table(); }

const KernelTable* kernels_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (ok) return &isa_avx2::table();
#endif
  return nullptr;
}

const KernelTable* kernels_avx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                         __builtin_cpu_supports("fma");
  if (ok) return &isa_avx512::table();
#endif
  return nullptr;
}

const KernelTable* kernels_neon() {
#if defined(__aarch64__)
  return &isa_neon::table();  // NEON is part of the AArch64 base ISA
#else
  return nullptr;
#endif
}

const KernelTable& kernels_best() {
  static const KernelTable* best = [] {
    if (const KernelTable* t = kernels_neon()) return t;
    if (const KernelTable* t = kernels_avx512()) return t;
    if (const KernelTable* t = kernels_avx2()) return t;
    return &kernels_generic();
  }();
  return *best;
}

namespace {
std::atomic<const KernelTable*> override_table{nullptr};
}

const KernelTable& kernels_active() {
  const KernelTable* t = override_table.load(std::memory_order_relaxed);
  return t ? *t : kernels_best();
}

void set_kernels_override(const KernelTable* table) { override_table.store(table, std::memory_order_relaxed); }

const KernelTable* kernels_named(const char* name) {
  if (!name || std::strcmp(name, "auto") == 0) return &kernels_best();
  if (std::strcmp(name, "avx512") == 0) return kernels_avx512();
  if (std::strcmp(name, "avx2") == 0) return kernels_avx2();
  if (std::strcmp(name, "neon") == 0) return kernels_neon();
  if (std::strcmp(name, "generic") == 0 || std::strcmp(name, "scalar") == 0) return &kernels_generic();
  return nullptr;
}

}  // namespace nd::cpu
