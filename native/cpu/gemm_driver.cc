#include "cpu/gemm_driver.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>

#include "core/aligned.h"

namespace nd::cpu::gemm {

namespace {

// Per-thread packing buffers (a few MB).
struct AlignedBuffer {
  nd::ThreadScratch scratch;
  float* get(size_t n) {
    float* p = scratch.get(n);
    if (!p) throw std::bad_alloc();
    return p;
  }
};

thread_local AlignedBuffer a_buffer, b_buffer;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

void pack(const Kernels& k, const Operand& o, float* dst, int width, int64_t r0, int64_t rn, int64_t k0, int64_t kc) {
  switch (o.kind) {
    case Operand::Kind::Rows: return k.pack_rows(o.rows, dst, width, r0, rn, k0, kc);
    case Operand::Kind::Cols: return k.pack_cols(o.cols, dst, width, r0, rn, k0, kc);
    case Operand::Kind::Conv: return k.pack_conv(o.conv, dst, width, r0, rn, k0, kc);
  }
}

// One thread's share: rows [m0, m1) × columns [n0, n1) of C.
void run_block(const Kernels& kn, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K, const Operand& a,
               const Operand& b, float* c, int64_t ldc, const Epilogue& ep) {
  if (m0 >= m1 || n0 >= n1) return;
  const int mr = kn.mr, nr = kn.nr;
  // K in equal blocks of [kc, 2·kc): no short tail pass, and K up to 2·kc - 1 (e.g. 3×3×128) in
  // one pass, so C is written once.
  const int64_t k_blocks = std::max<int64_t>(1, K / kn.kc);
  const int64_t kc_max = std::max<int64_t>(1, (K + k_blocks - 1) / k_blocks);
  const int64_t mc_max = std::min(kn.mc, round_up(m1 - m0, mr)), nc_max = std::min(kn.nc, round_up(n1 - n0, nr));
  float* ap = a_buffer.get((size_t)(round_up(mc_max, mr) * kc_max + kPackSlack));
  float* bp = b_buffer.get((size_t)(round_up(nc_max, nr) * kc_max + kPackSlack));
  const Epilogue rest{ep.alpha, 1.f, nullptr, nullptr};
  for (int64_t jc = n0; jc < n1; jc += kn.nc) {
    const int64_t nc = std::min(kn.nc, n1 - jc);
    int64_t pc = 0;
    do {  // runs once with kc = 0 when K == 0 so the epilogue still writes C
      const int64_t kc = std::min(kc_max, K - pc);
      pack(kn, b, bp, nr, jc, nc, pc, kc);
      const Epilogue& e = pc == 0 ? ep : rest;
      for (int64_t ic = m0; ic < m1; ic += kn.mc) {
        const int64_t mc = std::min(kn.mc, m1 - ic);
        pack(kn, a, ap, mr, ic, mc, pc, kc);
        for (int64_t jr = 0; jr < nc; jr += nr)
          for (int64_t ir = 0; ir < mc; ir += mr) {
            Epilogue t = e;
            if (t.bias_m) t.bias_m += ic + ir;
            if (t.bias_n) t.bias_n += jc + jr;
            kn.micro(kc, ap + ir * kc, bp + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                     (int)std::min<int64_t>(mr, mc - ir), (int)std::min<int64_t>(nr, nc - jr), t);
          }
      }
      pc += kc;
    } while (pc < K);
  }
}

// Cycle estimate for one thread's share: vector FMAs plus packing (each packed element costs
// about a cycle; A is repacked for every NC block of columns).
double share_cost(const Kernels& kn, int64_t mt, int64_t nt, int64_t K) {
  const double lanes = kn.nr / 2.0;
  const double compute = (double)mt * (double)round_up(nt, kn.nr) * (double)K / lanes;
  const double pack_a = (double)mt * (double)K * (double)((nt + kn.nc - 1) / kn.nc);
  const double pack_b = (double)nt * (double)K;
  return compute + pack_a + pack_b;
}

}  // namespace

Split choose_split(const Kernels& kn, int threads, int64_t M, int64_t N, int64_t K) {
  Split best;
  // Too little work to pay for waking a thread (~10 µs).
  if (threads <= 1 || (double)M * (double)N * (double)std::max<int64_t>(K, 1) < 1.5e5) return best;
  double best_cost = share_cost(kn, M, N, K);
  for (int tm = 1; tm <= threads; ++tm) {
    if (threads % tm) continue;
    const int tn = threads / tm;
    const int64_t mt = (M + tm - 1) / tm, nt = round_up((N + tn - 1) / tn, kn.nr);
    if (mt * (tm - 1) >= M || nt * (tn - 1) >= N) continue;  // a thread would get nothing
    const double cost = share_cost(kn, mt, std::min(nt, N), K);
    if (cost < best_cost) best_cost = cost, best = {tm, tn};
  }
  return best;
}

void run(ThreadPool& pool, const Kernels& kn, int64_t M, int64_t N, int64_t K, const Operand& a, const Operand& b,
         float* c, int64_t ldc, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const Split s = choose_split(kn, pool.size(), M, N, K);
  const int tasks = s.tm * s.tn;
  const int64_t mt = (M + s.tm - 1) / s.tm, nt = round_up((N + s.tn - 1) / s.tn, kn.nr);
  auto body = [&](int64_t t, int) {
    const int64_t i = t / s.tn, j = t % s.tn;
    run_block(kn, i * mt, std::min(M, (i + 1) * mt), j * nt, std::min(N, (j + 1) * nt), K, a, b, c, ldc, ep);
  };
  if (tasks == 1) {
    body(0, 0);
    return;
  }
  pool.run_tasks(tasks, body);
}

}  // namespace nd::cpu::gemm
