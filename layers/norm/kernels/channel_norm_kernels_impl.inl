// normlab layers: the fused per-channel kernels, written once as plain loops and compiled
// three times (normlab_simd_kernel in CMakeLists.txt). See channel_norm_kernels.hpp.
//
// Inner loops run over one plane of S contiguous floats with `omp simd` reductions in
// float lanes (a plane is at most a few thousand values, so float partial sums lose
// nothing that matters); each plane's sum is then added into a double. That is a
// two-level (pairwise-like) summation: the error does not grow with N.
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <cstdint>

#include "layers/norm/kernels/channel_norm_kernels.hpp"

namespace nl::NL_SIMD_NS {

static void moments(const float* x, int64_t C, int64_t S, int64_t n0, int64_t n1, int64_t c, double* mean,
                    double* m2) {
  const double M = static_cast<double>((n1 - n0) * S);
  // pass 1: the mean
  double total = 0.0;
  for (int64_t n = n0; n < n1; ++n) {
    const float* p = x + (n * C + c) * S;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < S; ++i) s += p[i];
    total += s;
  }
  double mu = total / M;
  if (!m2) {
    *mean = mu;
    return;
  }
  // pass 2: deviations from it; sum(x - mu) corrects the rounding of mu itself
  const float muf = static_cast<float>(mu);
  double sum_d = 0.0, sum_d2 = 0.0;
  for (int64_t n = n0; n < n1; ++n) {
    const float* p = x + (n * C + c) * S;
    float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t i = 0; i < S; ++i) {
      const float d = p[i] - muf;
      s1 += d;
      s2 += d * d;
    }
    sum_d += s1;
    sum_d2 += s2;
  }
  *mean = static_cast<double>(muf) + sum_d / M;
  const double v = sum_d2 - sum_d * sum_d / M;  // sum (x - mean)^2, exact mean
  *m2 = v > 0.0 ? v : 0.0;
}

// The fused ReLU (relu_a / relu_b; fused_relu_impl.inl): the pre-ReLU value is affine(), the
// forward's own expression. Each kernel keeps a loop without it, so plain BN runs the code it
// always ran.
#include "layers/norm/kernels/fused_relu_impl.inl"
static inline float affine(float x, float mu, float a, float b) { return (x - mu) * a + b; }

static void scale_shift(const float* x, float* y, int64_t C, int64_t S, int64_t n0, int64_t n1, int64_t c,
                        float mu, float ac, float bc, bool relu) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* p = x + (n * C + c) * S;
    float* q = y + (n * C + c) * S;
    if (relu) {
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) q[i] = relu_of(affine(p[i], mu, ac, bc));
    } else {
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) q[i] = affine(p[i], mu, ac, bc);
    }
  }
}

static void grad_sums(const float* x, const float* dy, const float* relu_a, const float* relu_b, int64_t C, int64_t S,
                      int64_t n0, int64_t n1, int64_t c, float mu, double* sum_dy, double* sum_dy_xmu) {
  double t1 = 0.0, t2 = 0.0;
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t off = (n * C + c) * S;
    const float* p = x + off;
    const float* g = dy + off;
    float s1 = 0.0f, s2 = 0.0f;
    if (relu_a) {
      const float ra = *relu_a, rb = *relu_b;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t i = 0; i < S; ++i) {
        const float gi = relu_grad(affine(p[i], mu, ra, rb), g[i]);
        s1 += gi;
        s2 += gi * (p[i] - mu);
      }
    } else if (sum_dy_xmu) {
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t i = 0; i < S; ++i) {
        s1 += g[i];
        s2 += g[i] * (p[i] - mu);
      }
    } else {
#pragma omp simd reduction(+ : s1)
      for (int64_t i = 0; i < S; ++i) s1 += g[i];
    }
    t1 += s1;
    t2 += s2;
  }
  *sum_dy = t1;
  if (sum_dy_xmu) *sum_dy_xmu = t2;
}

static void grad_input(const float* x, const float* dy, const float* relu_a, const float* relu_b, float* dx,
                       int64_t C, int64_t S, int64_t n0, int64_t n1, int64_t c, float mu, float a, float slope,
                       float shift) {
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t off = (n * C + c) * S;
    const float* p = x + off;
    const float* g = dy + off;
    float* q = dx + off;
    if (relu_a) {
      const float ra = *relu_a, rb = *relu_b;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i)
        q[i] = relu_grad(affine(p[i], mu, ra, rb), g[i]) * a + ((p[i] - mu) * slope + shift);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) q[i] = g[i] * a + ((p[i] - mu) * slope + shift);
    }
  }
}

// ---- column kernels (S == 1): rows outer, channels inner ----
// Statistics are gathered in tiles of kRows rows x kCols channels: the tile (8 KB) stays in
// L1 for the second pass, and its float sums are short enough to be exact to float rounding.
constexpr int64_t kRows = 32, kCols = 64;

static void col_moments(const float* x, int64_t C, int64_t n0, int64_t n1, int64_t c0, int64_t c1, double* mean,
                        double* m2) {
  for (int64_t c = c0; c < c1; ++c) mean[c] = m2[c] = 0.0;
  for (int64_t r0 = n0; r0 < n1; r0 += kRows) {
    const int64_t r1 = r0 + kRows < n1 ? r0 + kRows : n1;
    const double nb = static_cast<double>(r1 - r0), na = static_cast<double>(r0 - n0);
    for (int64_t t0 = c0; t0 < c1; t0 += kCols) {
      const int64_t w = t0 + kCols < c1 ? kCols : c1 - t0;
      float s[kCols] = {}, d1[kCols] = {}, d2[kCols] = {};
      for (int64_t r = r0; r < r1; ++r) {  // pass 1: the tile's mean
        const float* p = x + r * C + t0;
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) s[j] += p[j];
      }
      const float inv = static_cast<float>(1.0 / nb);
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) s[j] *= inv;
      for (int64_t r = r0; r < r1; ++r) {  // pass 2 (from L1): deviations from it
        const float* p = x + r * C + t0;
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) {
          const float d = p[j] - s[j];
          d1[j] += d;
          d2[j] += d * d;
        }
      }
      // Chan et al.: merge the tile (nb rows, mean bm, M2 bm2) into the running (na rows).
      double* mu = mean + t0;
      double* q = m2 + t0;
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        const double bm = static_cast<double>(s[j]) + d1[j] / nb;
        const double bm2 = static_cast<double>(d2[j]) - static_cast<double>(d1[j]) * d1[j] / nb;
        const double delta = bm - mu[j];
        mu[j] += delta * nb / (na + nb);
        q[j] += (bm2 > 0.0 ? bm2 : 0.0) + delta * delta * na * nb / (na + nb);
      }
    }
  }
}

static void col_scale_shift(const float* x, float* y, int64_t C, int64_t n0, int64_t n1, int64_t c0, int64_t c1,
                            const float* mu, const float* a, const float* b, bool relu) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* p = x + n * C;
    float* q = y + n * C;
    if (relu) {
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) q[c] = relu_of(affine(p[c], mu[c], a[c], b[c]));
    } else {
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) q[c] = affine(p[c], mu[c], a[c], b[c]);
    }
  }
}

static void col_grad_sums(const float* x, const float* dy, const float* relu_a, const float* relu_b, int64_t C,
                          int64_t n0, int64_t n1, int64_t c0, int64_t c1, const float* mu, double* sum_dy,
                          double* sum_dy_xmu) {
  for (int64_t c = c0; c < c1; ++c) sum_dy[c] = sum_dy_xmu[c] = 0.0;
  for (int64_t r0 = n0; r0 < n1; r0 += kRows) {
    const int64_t r1 = r0 + kRows < n1 ? r0 + kRows : n1;
    for (int64_t t0 = c0; t0 < c1; t0 += kCols) {
      const int64_t w = t0 + kCols < c1 ? kCols : c1 - t0;
      float s1[kCols] = {}, s2[kCols] = {};
      for (int64_t r = r0; r < r1; ++r) {
        const float* p = x + r * C + t0;
        const float* g = dy + r * C + t0;
        if (relu_a) {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) {
            const float gj = relu_grad(affine(p[j], mu[t0 + j], relu_a[t0 + j], relu_b[t0 + j]), g[j]);
            s1[j] += gj;
            s2[j] += gj * (p[j] - mu[t0 + j]);
          }
        } else {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) {
            s1[j] += g[j];
            s2[j] += g[j] * (p[j] - mu[t0 + j]);
          }
        }
      }
#pragma omp simd
      for (int64_t j = 0; j < w; ++j) {
        sum_dy[t0 + j] += s1[j];
        sum_dy_xmu[t0 + j] += s2[j];
      }
    }
  }
}

static void col_grad_input(const float* x, const float* dy, const float* relu_a, const float* relu_b, float* dx,
                           int64_t C, int64_t n0, int64_t n1, int64_t c0, int64_t c1, const float* mu, const float* a,
                           const float* slope, const float* shift) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* p = x + n * C;
    const float* g = dy + n * C;
    float* q = dx + n * C;
    if (relu_a) {
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c)
        q[c] = relu_grad(affine(p[c], mu[c], relu_a[c], relu_b[c]), g[c]) * a[c] +
               ((p[c] - mu[c]) * slope[c] + shift[c]);
    } else {
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) q[c] = g[c] * a[c] + ((p[c] - mu[c]) * slope[c] + shift[c]);
    }
  }
}

extern const ChannelNormKernelTable channel_norm_table;
const ChannelNormKernelTable channel_norm_table = {moments,     scale_shift,     grad_sums,     grad_input,
                                                   col_moments, col_scale_shift, col_grad_sums, col_grad_input};

}  // namespace nl::NL_SIMD_NS
