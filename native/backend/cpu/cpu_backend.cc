// The CPU backend: the Backend interface over the kernels in native/cpu (each call forwards unchanged, so the
// models run exactly the kernel calls they made before the interface existed).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "cpu/ops.h"

namespace nd {
namespace {

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }
  float* alloc(Arena& arena, size_t n) const override { return arena.alloc_f32(n); }

  void linear(ThreadPool& pool, const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N,
              const float* bias, float* y, int64_t ldy, bool accumulate) const override {
    cpu::linear(pool, x, M, K, ldx, W, N, bias, y, ldy, accumulate);
  }
  void gemm_f32(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc) const override {
    cpu::gemm_f32(pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  void conv2d(ThreadPool& pool, const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight,
              int64_t Cout, int kh, int kw, int stride, int pad, const float* bias, float* y) const override {
    cpu::conv2d(pool, x, B, Cin, H, W, weight, Cout, kh, kw, stride, pad, bias, y);
  }
  void group_norm(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups,
                  const float* gamma, const float* beta, float eps, bool silu) const override {
    cpu::group_norm(pool, x, y, B, C, HW, groups, gamma, beta, eps, silu);
  }
  void layer_norm(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t C, const float* gamma,
                  const float* beta, float eps) const override {
    cpu::layer_norm(pool, x, y, M, C, gamma, beta, eps);
  }
  void silu(ThreadPool& pool, float* x, int64_t n) const override { cpu::silu(pool, x, n); }
  void gelu(ThreadPool& pool, float* x, int64_t n) const override { cpu::gelu(pool, x, n); }
  void quick_gelu(ThreadPool& pool, float* x, int64_t n) const override { cpu::quick_gelu(pool, x, n); }
  void geglu(ThreadPool& pool, const float* x, float* y, int64_t M, int64_t N) const override {
    cpu::geglu(pool, x, y, M, N);
  }
  void add(ThreadPool& pool, const float* a, const float* b, float* y, int64_t n) const override {
    cpu::add(pool, a, b, y, n);
  }
  void upsample_nearest2x(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H, int64_t W) const override {
    cpu::upsample_nearest2x(pool, x, y, BC, H, W);
  }
  void softmax_rows(ThreadPool& pool, float* x, int64_t rows, int64_t cols) const override {
    cpu::softmax_rows(pool, x, rows, cols);
  }
  void attention(ThreadPool& pool, const AttentionArgs& args) const override { cpu::attention(pool, args); }

  // Data movement: plain loops over the pool (memory-bound; no kernel of their own in native/cpu).
  void to_tokens(ThreadPool& pool, const float* x, float* y, int64_t B, int64_t C, int64_t N) const override {
    pool.parallel_for(B * N, [&](int64_t s, int64_t e, int) {
      for (int64_t r = s; r < e; ++r) {
        const int64_t b = r / N, n = r % N;
        const float* src = x + b * C * N + n;
        float* dst = y + r * C;
        for (int64_t c = 0; c < C; ++c) dst[c] = src[c * N];
      }
    });
  }
  void add_from_tokens(ThreadPool& pool, const float* t, const float* residual, float* y, int64_t B, int64_t C,
                       int64_t N) const override {
    pool.parallel_for(B * C, [&](int64_t s, int64_t e, int) {
      for (int64_t r = s; r < e; ++r) {
        const int64_t b = r / C, c = r % C;
        const float* src = t + b * N * C + c;
        const float* res = residual + r * N;
        float* dst = y + r * N;
        for (int64_t n = 0; n < N; ++n) dst[n] = res[n] + src[n * C];
      }
    });
  }
  void concat_channels(ThreadPool&, const float* a, int64_t Ca, const float* b, int64_t Cb, float* y, int64_t B,
                       int64_t HW) const override {
    const int64_t C = Ca + Cb;
    for (int64_t i = 0; i < B; ++i) {
      std::memcpy(y + i * C * HW, a + i * Ca * HW, sizeof(float) * (size_t)(Ca * HW));
      std::memcpy(y + (i * C + Ca) * HW, b + i * Cb * HW, sizeof(float) * (size_t)(Cb * HW));
    }
  }
  void resize_nearest(ThreadPool& pool, const float* x, float* y, int64_t BC, int64_t H, int64_t W, int64_t Ho,
                      int64_t Wo) const override {
    const float sy = (float)H / (float)Ho, sx = (float)W / (float)Wo;
    pool.parallel_for(BC, [&](int64_t b, int64_t e, int) {
      for (int64_t bc = b; bc < e; ++bc)
        for (int64_t oy = 0; oy < Ho; ++oy) {
          const int64_t iy = std::min((int64_t)std::floor((float)oy * sy), H - 1);
          for (int64_t ox = 0; ox < Wo; ++ox) {
            const int64_t ix = std::min((int64_t)std::floor((float)ox * sx), W - 1);
            y[(bc * Ho + oy) * Wo + ox] = x[(bc * H + iy) * W + ix];
          }
        }
    });
  }
};

}  // namespace

const Backend& default_backend() {
  static const CpuBackend cpu;
  return cpu;
}

}  // namespace nd
