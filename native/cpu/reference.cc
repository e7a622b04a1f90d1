#include "cpu/reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nd::ref {

void linear(const float* x, int64_t M, int64_t K, int64_t ldx, WeightRef W, int64_t N, const float* bias, float* y,
            int64_t ldy, bool accumulate) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) acc += (double)x[m * ldx + k] * load_as_f32(W.data, W.dtype, (size_t)(n * K + k));
      y[m * ldy + n] = (float)(accumulate ? y[m * ldy + n] + acc : acc);
    }
}

void gemm_f32(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = transA ? A[k * lda + m] : A[m * lda + k];
        const float b = transB ? B[n * ldb + k] : B[k * ldb + n];
        acc += (double)a * b;
      }
      C[m * ldc + n] = (float)(alpha * acc + (beta == 0.f ? 0.0 : (double)beta * C[m * ldc + n]));
    }
}

void conv2d(const float* x, int64_t B, int64_t Cin, int64_t H, int64_t W, WeightRef weight, int64_t Cout, int kh,
            int kw, int stride, int pad, const float* bias, float* y) {
  const int64_t Ho = (H + 2 * pad - kh) / stride + 1, Wo = (W + 2 * pad - kw) / stride + 1;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t co = 0; co < Cout; ++co)
      for (int64_t oy = 0; oy < Ho; ++oy)
        for (int64_t ox = 0; ox < Wo; ++ox) {
          double acc = bias ? bias[co] : 0.0;
          for (int64_t ci = 0; ci < Cin; ++ci)
            for (int ky = 0; ky < kh; ++ky)
              for (int kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                const size_t wi = (size_t)(((co * Cin + ci) * kh + ky) * kw + kx);
                acc += (double)x[((b * Cin + ci) * H + iy) * W + ix] * load_as_f32(weight.data, weight.dtype, wi);
              }
          y[((b * Cout + co) * Ho + oy) * Wo + ox] = (float)acc;
        }
}

void group_norm(const float* x, float* y, int64_t B, int64_t C, int64_t HW, int groups, const float* gamma,
                const float* beta, float eps, bool silu_after) {
  const int64_t cg = C / groups;
  for (int64_t b = 0; b < B; ++b)
    for (int g = 0; g < groups; ++g) {
      const float* xs = x + (b * C + g * cg) * HW;
      float* ys = y + (b * C + g * cg) * HW;
      const int64_t n = cg * HW;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < n; ++i) mean += xs[i];
      mean /= (double)n;
      for (int64_t i = 0; i < n; ++i) var += (xs[i] - mean) * (xs[i] - mean);
      var /= (double)n;
      const double inv = 1.0 / std::sqrt(var + eps);
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t ch = g * cg + c;
          double v = (xs[c * HW + i] - mean) * inv * (gamma ? gamma[ch] : 1.f) + (beta ? beta[ch] : 0.f);
          if (silu_after) v = v / (1.0 + std::exp(-v));
          ys[c * HW + i] = (float)v;
        }
    }
}

void layer_norm(const float* x, float* y, int64_t M, int64_t C, const float* gamma, const float* beta, float eps) {
  for (int64_t m = 0; m < M; ++m) {
    const float* xs = x + m * C;
    float* ys = y + m * C;
    double mean = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mean += xs[c];
    mean /= (double)C;
    for (int64_t c = 0; c < C; ++c) var += (xs[c] - mean) * (xs[c] - mean);
    var /= (double)C;
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t c = 0; c < C; ++c)
      ys[c] = (float)((xs[c] - mean) * inv * (gamma ? gamma[c] : 1.f) + (beta ? beta[c] : 0.f));
  }
}

void silu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = (float)(x[i] / (1.0 + std::exp(-(double)x[i])));
}
void gelu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = (float)(0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0))));
}
void quick_gelu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = (float)(x[i] / (1.0 + std::exp(-1.702 * x[i])));
}
void geglu(const float* x, float* y, int64_t M, int64_t N) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const double a = x[m * 2 * N + n], g = x[m * 2 * N + N + n];
      y[m * N + n] = (float)(a * 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0))));
    }
}
void add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void upsample_nearest2x(const float* x, float* y, int64_t BC, int64_t H, int64_t W) {
  for (int64_t c = 0; c < BC; ++c)
    for (int64_t i = 0; i < 2 * H; ++i)
      for (int64_t j = 0; j < 2 * W; ++j) y[(c * 2 * H + i) * 2 * W + j] = x[(c * H + i / 2) * W + j / 2];
}
void softmax_rows(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xs = x + r * cols;
    const float mx = *std::max_element(xs, xs + cols);
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp((double)xs[c] - mx);
    for (int64_t c = 0; c < cols; ++c) xs[c] = (float)(std::exp((double)xs[c] - mx) / sum);
  }
}

void attention(const AttentionArgs& a) {
  std::vector<double> s((size_t)a.nk);
  if (a.probs_mean) std::fill(a.probs_mean, a.probs_mean + a.batch * a.nq * a.nk, 0.f);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t h = 0; h < a.heads; ++h)
      for (int64_t i = 0; i < a.nq; ++i) {
        const float* q = a.q + b * a.q_batch + i * a.q_row + h * a.head_dim;
        double mx = -1e300;
        for (int64_t j = 0; j < a.nk; ++j) {
          const float* k = a.k + b * a.k_batch + j * a.k_row + h * a.head_dim;
          double dot = 0;
          for (int64_t d = 0; d < a.head_dim; ++d) dot += (double)q[d] * k[d];
          s[j] = dot * a.scale;
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < a.nk; ++j) sum += (s[j] = std::exp(s[j] - mx));
        float* o = a.out + b * a.out_batch + i * a.out_row + h * a.head_dim;
        for (int64_t d = 0; d < a.head_dim; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < a.nk; ++j) acc += s[j] * a.v[b * a.v_batch + j * a.v_row + h * a.head_dim + d];
          o[d] = (float)(acc / sum);
        }
        if (a.probs_mean)
          for (int64_t j = 0; j < a.nk; ++j)
            a.probs_mean[(b * a.nq + i) * a.nk + j] += (float)(s[j] / sum / (double)a.heads);
      }
}

}  // namespace nd::ref
