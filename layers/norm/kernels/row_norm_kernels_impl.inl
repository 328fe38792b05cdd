// normlab norms: the fused row kernels, written once as plain loops and compiled three
// times (see row_norm_kernels.hpp). Reductions use `omp simd reduction` so the compiler may
// reorder float sums into vector lanes; each 256-element block's float sum goes into a
// double, which bounds the rounding error of long rows.
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <immintrin.h>

#include <cstring>

#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl::NL_SIMD_NS {
#if defined(__AVX2__)
namespace vector_ops {
#include "core/kernels/vector_impl.inl"
}  // namespace vector_ops
#endif

constexpr int64_t kBlock = 256;

static double block_sum(const float* x, int64_t n) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += x[i];
    total += s;
  }
  return total;
}

static void moments(const float* x, int64_t n, float* mean_out, float* var_out) {
  const float mean0 = static_cast<float>(block_sum(x, n) / static_cast<double>(n));
  double sd = 0.0, sdd = 0.0;  // sum(d), sum(d^2) with d = x - mean0
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s1 = 0.0f, s2 = 0.0f;
#pragma omp simd reduction(+ : s1, s2)
    for (int64_t i = b; i < e; ++i) {
      const float d = x[i] - mean0;
      s1 += d;
      s2 += d * d;
    }
    sd += s1;
    sdd += s2;
  }
  const double inv_n = 1.0 / static_cast<double>(n);
  *mean_out = static_cast<float>(mean0 + sd * inv_n);
  *var_out = static_cast<float>(std::max(0.0, (sdd - sd * sd * inv_n) * inv_n));
}

static float mean_square(const float* x, int64_t n) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += x[i] * x[i];
    total += s;
  }
  return static_cast<float>(total / static_cast<double>(n));
}

// The fused ReLU of GN / IN (relu_a / relu_b; fused_relu_impl.inl): the pre-ReLU value is
// x * a + b, the forward's own expression. The loops without it stay as they were.
#include "layers/norm/kernels/fused_relu_impl.inl"

static void scale_shift(const float* x, float a, float b, float* y, int64_t n, bool relu) {
  if (relu) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = relu_of(x[i] * a + b);
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a + b;
}

static void scale_shift_max(const float* x, float a, float b, float tau, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i] * a + b, tau);
}

static void sums_dy_dyx(const float* dy, const float* x, const float* relu_a, const float* relu_b, float center,
                        int64_t n, float* sum_dy, float* sum_dy_x) {
  double t1 = 0.0, t2 = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s1 = 0.0f, s2 = 0.0f;
    if (relu_a) {
      const float ra = *relu_a, rb = *relu_b;
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t i = b; i < e; ++i) {
        const float g = relu_grad(x[i] * ra + rb, dy[i]);
        s1 += g;
        s2 += g * (x[i] - center);
      }
    } else {
#pragma omp simd reduction(+ : s1, s2)
      for (int64_t i = b; i < e; ++i) {
        s1 += dy[i];
        s2 += dy[i] * (x[i] - center);
      }
    }
    t1 += s1;
    t2 += s2;
  }
  *sum_dy = static_cast<float>(t1);
  *sum_dy_x = static_cast<float>(t2);
}

static void affine_backward(const float* dy, const float* x, const float* relu_a, const float* relu_b, float a,
                            float b, float center, float c, float* dx, int64_t n) {
  if (relu_a) {
    const float ra = *relu_a, rb = *relu_b;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = a * relu_grad(x[i] * ra + rb, dy[i]) + b * (x[i] - center) + c;
    return;
  }
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dx[i] = a * dy[i] + b * (x[i] - center) + c;
}

// LayerNorm's affine output, the value the fused ReLU's backward recomputes.
static inline float ln_affine(float x, float mean, float rstd, float gamma, float beta) {
  return (x - mean) * rstd * gamma + beta;
}

static void layer_norm_forward(const float* x, const float* gamma, const float* beta, float mean, float rstd,
                               float* y, int64_t n, bool relu) {
  if (relu) {  // gamma and beta given (the caller's contract)
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = relu_of(ln_affine(x[i], mean, rstd, gamma[i], beta[i]));
  } else if (gamma && beta) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = ln_affine(x[i], mean, rstd, gamma[i], beta[i]);
  } else if (gamma) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i];
  } else if (beta) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd + beta[i];
  } else {
    scale_shift(x, rstd, -mean * rstd, y, n, false);
  }
}

// layer_norm_backward's second pass with gamma, a vector of columns (i) at a time, the rows (r)
// inside, written with the vector type (core/kernels/vector_impl.inl: a plain loop in this
// order is vectorized along r by the compiler, which reorders the sums; the scalar level runs
// the plain loop):
//   g = dy, or with the ReLU fused dy where the forward's affine output was > 0;
//   dx[r][i] = rstd[r] * (g * gamma[i] - dnorm_mean[r] - xhat * dnorm_norm_mean[r])   (dx: null = skip)
//   dgamma[i] += sum_r g * xhat,   dbeta[i] += sum_r g                                 (null = skip)
// gamma null: 1 (g * 1 is g, to the bit); the ReLU needs gamma and beta.
template <bool Relu>
static void layer_norm_backward_columns(const float* dy, const float* x, const float* gamma, const float* beta,
                                        const float* mean, const float* rstd, const float* dnorm_mean,
                                        const float* dnorm_norm_mean, int64_t rows, float* dx, float* dgamma,
                                        float* dbeta, int64_t n) {
#if defined(__AVX2__)  // the AVX2 and AVX-512 levels
  using namespace vector_ops;
  for (int64_t i = 0; i < n; i += kVec) {
    const int64_t len = std::min<int64_t>(kVec, n - i);
    const vf gam = gamma ? load_up_to(gamma + i, len) : vf{} + 1.0f, bet = Relu ? load_up_to(beta + i, len) : vf{};
    vf dg = {}, db = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float m = mean[r], s = rstd[r];
      const vf xv = load_up_to(x + r * n + i, len), dyv = load_up_to(dy + r * n + i, len), xhat = (xv - m) * s;
      vf g = dyv;
      if constexpr (Relu) g = (xv - m) * s * gam + bet > 0.0f ? dyv : vf{};  // relu_grad of ln_affine
      if (dx) store_first(dx + r * n + i, s * (g * gam - dnorm_mean[r] - xhat * dnorm_norm_mean[r]), len);
      dg += g * xhat;
      db += g;
    }
    if (dgamma) store_first(dgamma + i, load_up_to(dgamma + i, len) + dg, len);
    if (dbeta) store_first(dbeta + i, load_up_to(dbeta + i, len) + db, len);
  }
#else  // the scalar level (scalar code only: scripts/check_scalar_kernels.sh): one column at a time
  for (int64_t i = 0; i < n; ++i) {
    const float gam = gamma ? gamma[i] : 1.0f;
    float dg = 0.0f, db = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float xv = x[r * n + i], m = mean[r], s = rstd[r], xhat = (xv - m) * s;
      const float g = Relu ? relu_grad(ln_affine(xv, m, s, gam, beta[i]), dy[r * n + i]) : dy[r * n + i];
      if (dx) dx[r * n + i] = s * (g * gam - dnorm_mean[r] - xhat * dnorm_norm_mean[r]);
      dg += g * xhat;
      db += g;
    }
    if (dgamma) dgamma[i] += dg;
    if (dbeta) dbeta[i] += db;
  }
#endif
}

static void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* beta,
                                const float* mean, const float* rstd, int64_t rows, float* dx, float* dgamma,
                                float* dbeta, int64_t n, bool relu) {
  // Pass 1, per row (dx only): the two reductions, sum(g) and sum(g * xhat).
  float dnorm_mean[kRowNormBackwardMaxRows], dnorm_norm_mean[kRowNormBackwardMaxRows];
  for (int64_t r = 0; dx && r < rows; ++r) {
    const float *dyr = dy + r * n, *xr = x + r * n, m = mean[r], s = rstd[r];
    double t_g = 0.0, t_gx = 0.0;
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t e = std::min(n, b + kBlock);
      float s_g = 0.0f, s_gx = 0.0f;
      if (relu) {
#pragma omp simd reduction(+ : s_g, s_gx)
        for (int64_t i = b; i < e; ++i) {
          const float g = relu_grad(ln_affine(xr[i], m, s, gamma[i], beta[i]), dyr[i]) * gamma[i];
          s_g += g;
          s_gx += g * (xr[i] - m);
        }
      } else if (gamma) {
#pragma omp simd reduction(+ : s_g, s_gx)
        for (int64_t i = b; i < e; ++i) {
          const float g = dyr[i] * gamma[i];
          s_g += g;
          s_gx += g * (xr[i] - m);
        }
      } else {
#pragma omp simd reduction(+ : s_g, s_gx)
        for (int64_t i = b; i < e; ++i) {
          s_g += dyr[i];
          s_gx += dyr[i] * (xr[i] - m);
        }
      }
      t_g += s_g;
      t_gx += s_gx;
    }
    dnorm_mean[r] = static_cast<float>(t_g / static_cast<double>(n));
    dnorm_norm_mean[r] = static_cast<float>(t_gx / static_cast<double>(n)) * rstd[r];
  }
  // Pass 2: columns in vector lanes, rows inside, so a column's dgamma and dbeta are summed over
  // the rows in registers and read and written once per call, gamma and beta read once; the
  // rows' x and dy are still in cache from pass 1. The same sums in the same order as row after
  // row (what this pass was before, through an L1 tile of dgamma / dbeta loaded and stored per
  // row), a third of the loads and stores: LayerNorm(256) at 8192 rows, 1 thread, 0.87x PyTorch
  // before.
  if (relu)
    layer_norm_backward_columns<true>(dy, x, gamma, beta, mean, rstd, dnorm_mean, dnorm_norm_mean, rows, dx, dgamma,
                                      dbeta, n);
  else
    layer_norm_backward_columns<false>(dy, x, gamma, beta, mean, rstd, dnorm_mean, dnorm_norm_mean, rows, dx, dgamma,
                                       dbeta, n);
}

static void rms_norm_forward(const float* x, const float* gamma, float rstd, float* y, int64_t n) {
  if (gamma) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * rstd * gamma[i];
  } else {
    scale_shift(x, rstd, 0.0f, y, n, false);
  }
}

static void rms_norm_backward(const float* dy, const float* x, const float* gamma, const float* rstd, int64_t rows,
                              float* dx, float* dgamma, int64_t n) {
  // Pass 1, per row (dx only): the one reduction, sum(g * x).
  float dnorm_norm_mean[kRowNormBackwardMaxRows];
  for (int64_t r = 0; dx && r < rows; ++r) {
    const float *dyr = dy + r * n, *xr = x + r * n;
    double t_gx = 0.0;
    for (int64_t b = 0; b < n; b += kBlock) {
      const int64_t e = std::min(n, b + kBlock);
      float s_gx = 0.0f;
      if (gamma) {
#pragma omp simd reduction(+ : s_gx)
        for (int64_t i = b; i < e; ++i) s_gx += dyr[i] * gamma[i] * xr[i];
      } else {
#pragma omp simd reduction(+ : s_gx)
        for (int64_t i = b; i < e; ++i) s_gx += dyr[i] * xr[i];
      }
      t_gx += s_gx;
    }
    dnorm_norm_mean[r] = static_cast<float>(t_gx / static_cast<double>(n)) * rstd[r];
  }
  // Pass 2, in tiles of kBlock columns, as layer_norm_backward: dx of every row, the rows'
  // dgamma summed in an L1 tile buffer and added once.
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t len = std::min(kBlock, n - b);
    const float* gam = gamma ? gamma + b : nullptr;
    float tile_dgamma[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float *dyr = dy + r * n + b, *xr = x + r * n + b, s = rstd[r];
      float* dxr = dx ? dx + r * n + b : nullptr;
      if (dxr) {
        const float dnm = dnorm_norm_mean[r];
        if (gam) {
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) dxr[i] = s * (dyr[i] * gam[i] - xr[i] * s * dnm);
        } else {
#pragma omp simd
          for (int64_t i = 0; i < len; ++i) dxr[i] = s * (dyr[i] - xr[i] * s * dnm);
        }
      }
      if (dgamma) {
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) tile_dgamma[i] += dyr[i] * xr[i] * s;
      }
    }
    if (dgamma)
      for (int64_t i = 0; i < len; ++i) dgamma[b + i] += tile_dgamma[i];
  }
}

static void frn_backward_sums(const float* dz, const float* x, float a, float b, float tau, int64_t n,
                              float* sum_dy, float* sum_dy_x, float* sum_dtau) {
  double t1 = 0.0, t2 = 0.0, t3 = 0.0;
  for (int64_t blk = 0; blk < n; blk += kBlock) {
    const int64_t e = std::min(n, blk + kBlock);
    float s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s1, s2, s3)
    for (int64_t i = blk; i < e; ++i) {
      const bool pass = x[i] * a + b > tau;
      const float d = pass ? dz[i] : 0.0f;
      s1 += d;
      s2 += d * x[i];
      s3 += pass ? 0.0f : dz[i];
    }
    t1 += s1;
    t2 += s2;
    t3 += s3;
  }
  *sum_dy = static_cast<float>(t1);
  *sum_dy_x = static_cast<float>(t2);
  *sum_dtau = static_cast<float>(t3);
}

static void frn_backward_dx(const float* dz, const float* x, float a, float b, float tau, float A, float B,
                            float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] * a + b > tau ? dz[i] : 0.0f;
    dx[i] = A * d + B * x[i];
  }
}

extern const RowNormKernels row_norm_table;  // read by row_norm_kernels.cpp
const RowNormKernels row_norm_table = {
    moments,          mean_square,       scale_shift,      scale_shift_max,   sums_dy_dyx,
    affine_backward,  layer_norm_forward, layer_norm_backward, rms_norm_forward, rms_norm_backward,
    frn_backward_sums, frn_backward_dx,
};

}  // namespace nl::NL_SIMD_NS
