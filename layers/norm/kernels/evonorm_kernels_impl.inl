// normlab norms: the EvoNorm kernels, written once as plain loops and compiled three times
// (see evonorm_kernels.hpp). Reductions use `omp simd reduction` inside 256-element blocks
// (float lanes), and each block's sums go into doubles, as in row_norm_kernels_impl.inl.
//
// Expects: NL_SIMD_NS, this level's namespace (simd_scalar | simd_avx2 | simd_avx512), defined by
// the translation unit normlab_simd_kernel (CMakeLists.txt) generates for each level.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "layers/norm/kernels/evonorm_kernels.hpp"

namespace nl::NL_SIMD_NS {

constexpr int64_t kBlock = 256;

static void moments(const float* x, int64_t n, double* mean_out, double* var_out) {
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; ++i) s += x[i];
    total += s;
  }
  const double inv_n = 1.0 / static_cast<double>(n);
  const float mean0 = static_cast<float>(total * inv_n);
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
  *mean_out = mean0 + sd * inv_n;
  *var_out = std::max(0.0, (sdd - sd * sd * inv_n) * inv_n);
}

// ---------------------------------------------------------------- EvoNorm-S0

static void s0_forward(const float* x, const float* s, float a, float b, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s[i] * a + b;
}

static void s0_backward_sums(const float* dy, const float* x, const float* s, int64_t n, float* sum_dy,
                             float* sum_dy_num, float* sum_dy_x2ds) {
  double t1 = 0.0, t2 = 0.0, t3 = 0.0;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    float s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s1, s2, s3)
    for (int64_t i = b; i < e; ++i) {
      const float dy_num = dy[i] * x[i] * s[i];
      s1 += dy[i];
      s2 += dy_num;
      s3 += dy_num * x[i] * (1.0f - s[i]);  // dy * x^2 * s * (1 - s)
    }
    t1 += s1;
    t2 += s2;
    t3 += s3;
  }
  *sum_dy = static_cast<float>(t1);
  *sum_dy_num = static_cast<float>(t2);
  *sum_dy_x2ds = static_cast<float>(t3);
}

static void s0_backward_dx(const float* dy, const float* x, const float* s, float A, float v, float B, float center,
                           float c0, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float dnum_dx = s[i] + v * x[i] * s[i] * (1.0f - s[i]);  // d(x * sigmoid(v x))/dx
    dx[i] = A * dy[i] * dnum_dx + B * (x[i] - center) + c0;
  }
}

// ---------------------------------------------------------------- EvoNorm-B0
// The branch test is `batch_std > b`, as the composite's max = b + relu(batch_std - b) with
// relu'(0) = 0: a tie goes to the instance branch.

static void b0_forward(const float* x, float batch_std, float v, float inst_std, float gamma, float beta, float* y,
                       int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float b = v * x[i] + inst_std;
    const float den = batch_std > b ? batch_std : b;
    y[i] = x[i] / den * gamma + beta;
  }
}

static void b0_backward_sums(const float* dy, const float* x, float batch_std, float v, float inst_std, float gamma,
                             int64_t n, float* sums) {
  double t[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
  for (int64_t blk = 0; blk < n; blk += kBlock) {
    const int64_t e = std::min(n, blk + kBlock);
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4)
    for (int64_t i = blk; i < e; ++i) {
      const float b = v * x[i] + inst_std;
      const bool batch = batch_std > b;
      const float den = batch ? batch_std : b;
      const float q = x[i] / den;             // x / den
      const float dden = -dy[i] * gamma * q / den;  // -g * x / den^2
      s0 += dy[i];
      s1 += dy[i] * q;
      s2 += batch ? 0.0f : dden;
      s3 += batch ? 0.0f : dden * x[i];
      s4 += batch ? dden : 0.0f;
    }
    t[0] += s0;
    t[1] += s1;
    t[2] += s2;
    t[3] += s3;
    t[4] += s4;
  }
  for (int k = 0; k < 5; ++k) sums[k] = static_cast<float>(t[k]);
}

static void b0_backward_dx(const float* dy, const float* x, float batch_std, float v, float inst_std, float gamma,
                           float ci, float inst_mean, float cb, float batch_mean, float c0, float* dx, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float b = v * x[i] + inst_std;
    const bool batch = batch_std > b;
    const float den = batch ? batch_std : b;
    const float g = dy[i] * gamma;
    const float dden = -g * (x[i] / den) / den;
    dx[i] = g / den + (batch ? 0.0f : dden * v) + ci * (x[i] - inst_mean) + cb * (x[i] - batch_mean) + c0;
  }
}

extern const EvoNormKernels evonorm_table;  // read by evonorm_kernels.cpp
const EvoNormKernels evonorm_table = {
    moments, s0_forward, s0_backward_sums, s0_backward_dx, b0_forward, b0_backward_sums, b0_backward_dx,
};

}  // namespace nl::NL_SIMD_NS
