// Standalone check + timing for the GEMM/conv kernels (not part of the addon; see tools/sources.cjs).
// Build: g++ -O3 -std=c++17 -pthread -Inative native/bench/gemm_check.cc
// native/cpu/{gemm*,conv2d,cpu_features,reference}.cc native/core/threadpool.cc
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/gemm_driver.h"
#include "cpu/ops.h"
#include "cpu/reference.h"

using namespace nd;
using namespace nd::cpu;

static std::mt19937 rng(1);
static std::vector<float> rnd(size_t n) {
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static bool check_pack() {
  bool ok = true;
  for (int width : {14, 32}) {
    for (auto dt : {DType::F32, DType::F16, DType::BF16}) {
      int64_t R = 37, K = 53;
      auto src = rnd(R * K);
      std::vector<uint16_t> h(R * K);
      for (size_t i = 0; i < h.size(); ++i) h[i] = dt == DType::F16 ? f32_to_f16(src[i]) : (uint16_t)(0);
      if (dt == DType::BF16)
        for (size_t i = 0; i < h.size(); ++i) {
          uint32_t b;
          memcpy(&b, &src[i], 4);
          h[i] = b >> 16;
        }
      gemm::RowsSource s{dt == DType::F32 ? (const void*)src.data() : (const void*)h.data(), dt, K};
      for (auto [r0, rn, k0, kc] :
           std::vector<std::array<int64_t, 4>>{{0, 37, 0, 53}, {3, 30, 5, 40}, {1, 14, 0, 16}}) {
        int64_t panels = (rn + width - 1) / width;
        std::vector<float> a(panels * width * kc + 16, -7), b(panels * width * kc + 16, -9);
        gemm::pack_rows_generic(s, a.data(), width, r0, rn, k0, kc);
        gemm::kernels_avx512().pack_rows(s, b.data(), width, r0, rn, k0, kc);
        if (!std::equal(a.begin(), a.end() - 16, b.begin())) {
          printf("pack_rows mismatch width %d dt %d r0 %ld\n", width, (int)dt, r0);
          ok = false;
        }
        for (int w2 : {6, 16}) {
          int64_t panels2 = (rn + w2 - 1) / w2;
          std::vector<float> c(panels2 * w2 * kc + 16, -7), e(panels2 * w2 * kc + 16, -9);
          gemm::pack_rows_generic(s, c.data(), w2, r0, rn, k0, kc);
          gemm::kernels_avx2().pack_rows(s, e.data(), w2, r0, rn, k0, kc);
          if (!std::equal(c.begin(), c.end() - 16, e.begin())) {
            printf("avx2 pack_rows mismatch width %d dt %d r0 %ld\n", w2, (int)dt, r0);
            ok = false;
          }
        }
      }
    }
  }
  // conv packer
  for (int stride : {1, 2})
    for (int64_t Wd : {5, 8, 33, 64}) {
      gemm::ConvSource s;
      auto x = rnd(3 * 7 * Wd);
      s.x = x.data();
      s.cin = 3;
      s.h = 7;
      s.w = Wd;
      s.kh = 3;
      s.kw = 3;
      s.stride = stride;
      s.pad = 1;
      s.ho = (7 + 2 - 3) / stride + 1;
      s.wo = (Wd + 2 - 3) / stride + 1;
      int64_t N = s.ho * s.wo;
      for (auto [r0, k0, kc] : std::vector<std::array<int64_t, 3>>{{0, 0, 27}, {3, 4, 20}}) {
        int64_t rn = N - r0, panels = (rn + 31) / 32;
        std::vector<float> a(panels * 32 * kc + 16, -7), b(panels * 32 * kc + 16, -9);
        gemm::pack_conv_generic(s, a.data(), 32, r0, rn, k0, kc);
        gemm::kernels_avx512().pack_conv(s, b.data(), 32, r0, rn, k0, kc);
        if (!std::equal(a.begin(), a.end() - 16, b.begin())) {
          printf("pack_conv mismatch stride %d W %ld r0 %ld\n", stride, Wd, r0);
          ok = false;
        }
      }
    }
  return ok;
}

static double maxrel(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, s = 1e-6;
  for (size_t i = 0; i < a.size(); ++i) s = std::max(s, (double)std::fabs(b[i]));
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m / s;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  const char* mode = argc > 2 ? argv[2] : "all";
  ThreadPool pool(threads);
  if (!strcmp(mode, "all") || !strcmp(mode, "check")) {
    printf("pack check: %s\n", check_pack() ? "ok" : "FAIL");
    for (int isa = 0; isa <= 2; ++isa) {
      set_isa_limit((Isa)isa);
      for (auto [M, N, K] : std::vector<std::array<int64_t, 3>>{
               {1, 77, 5}, {5, 77, 1}, {37, 45, 300}, {100, 64, 513}, {14, 32, 256}, {3, 3, 0}}) {
        auto x = rnd(M * K), w = rnd(N * K), bias = rnd(N);
        std::vector<float> y(M * N, 3), r(M * N, 3);
        linear(pool, x.data(), M, K, K, {w.data(), DType::F32}, N, bias.data(), y.data(), N, true);
        ref::linear(x.data(), M, K, K, {w.data(), DType::F32}, N, bias.data(), r.data(), N, true);
        printf("isa %d linear %ldx%ldx%ld rel %.2e\n", isa, M, N, K, maxrel(y, r));
        for (int ta = 0; ta < 2; ++ta)
          for (int tb = 0; tb < 2; ++tb) {
            auto A = rnd(M * K), B = rnd(N * K);
            std::vector<float> c(M * N, 1), rc(M * N, 1);
            gemm_f32(pool, ta, tb, M, N, K, 0.5f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.25f, c.data(), N);
            ref::gemm_f32(ta, tb, M, N, K, 0.5f, A.data(), ta ? M : K, B.data(), tb ? K : N, 0.25f, rc.data(), N);
            printf("  gemm ta %d tb %d rel %.2e\n", ta, tb, maxrel(c, rc));
          }
      }
      for (auto [Bn, Cin, H, W, Cout, k, st] : std::vector<std::array<int64_t, 7>>{
               {2, 4, 9, 13, 20, 3, 1}, {1, 5, 9, 13, 17, 3, 2}, {1, 8, 6, 7, 30, 1, 1}, {1, 3, 10, 10, 5, 5, 2}}) {
        int pad = k / 2;
        auto x = rnd(Bn * Cin * H * W), w = rnd(Cout * Cin * k * k), bias = rnd(Cout);
        int64_t Ho = (H + 2 * pad - k) / st + 1, Wo = (W + 2 * pad - k) / st + 1;
        std::vector<float> y(Bn * Cout * Ho * Wo), r(y.size());
        conv2d(pool, x.data(), Bn, Cin, H, W, {w.data(), DType::F32}, Cout, k, k, st, pad, bias.data(), y.data());
        ref::conv2d(x.data(), Bn, Cin, H, W, {w.data(), DType::F32}, Cout, k, k, st, pad, bias.data(), r.data());
        printf("isa %d conv b%ld %ldx%ldx%ld->%ld k%ld s%ld rel %.2e\n", isa, Bn, Cin, H, W, Cout, k, st, maxrel(y, r));
      }
    }
    set_isa_limit(Isa::Avx512);
  }
  if (!strcmp(mode, "all") || !strcmp(mode, "time")) {
    for (auto [M, N, K] : std::vector<std::array<int64_t, 3>>{
             {4096, 320, 1280}, {4096, 1280, 320}, {1024, 640, 640}, {256, 5120, 1280}}) {
      for (auto dt : {DType::F32, DType::F16}) {
        auto x = rnd(M * K), w = rnd(N * K);
        std::vector<uint16_t> h(N * K);
        for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_f16(w[i]);
        std::vector<float> y(M * N);
        WeightRef wr{dt == DType::F32 ? (const void*)w.data() : (const void*)h.data(), dt};
        double best = 1e9;
        for (int rep = 0; rep < 5; ++rep) {
          double t0 = now();
          linear(pool, x.data(), M, K, K, wr, N, nullptr, y.data(), N, false);
          best = std::min(best, now() - t0);
        }
        printf("linear %ldx%ldx%ld %s: %.1f GFLOP/s\n", M, N, K, dt == DType::F32 ? "f32" : "f16",
               2.0 * M * N * K / best / 1e9);
      }
    }
    for (auto [C, H] : std::vector<std::array<int64_t, 2>>{{320, 64}, {640, 32}, {1280, 16}, {1280, 8}, {128, 512}}) {
      auto x = rnd(C * H * H), w = rnd(C * C * 9);
      std::vector<float> y(C * H * H);
      double best = 1e9;
      for (int rep = 0; rep < 3; ++rep) {
        double t0 = now();
        conv2d(pool, x.data(), 1, C, H, H, {w.data(), DType::F32}, C, 3, 3, 1, 1, nullptr, y.data());
        best = std::min(best, now() - t0);
      }
      printf("conv3x3 %ldx%ldx%ld: %.1f GFLOP/s\n", C, H, H, 2.0 * C * C * 9 * H * H / best / 1e9);
    }
  }
}
