// normlab norms: the fused per-row kernels behind LayerNorm, GroupNorm, InstanceNorm,
// RMSNorm and FRN, with SIMD dispatch.
//
// Same convention as core/kernels: row_norm_kernels_impl.inl holds plain loops and is
// compiled three times (normlab_simd_kernel in CMakeLists.txt, one translation unit per
// level); row_norm_kernels() returns the table for the current simd_level().
//
// A "row" is a contiguous run of n floats: a token's D features (LN, RMS), one channel's
// H*W plane (IN, FRN, and each channel of a GN group). The kernels do one row (LayerNorm's
// and RMSNorm's backward: a few consecutive rows, see below); threading and the bookkeeping of
// (n, group, channel) live in the layer files. They never allocate.
//
// Sums are taken in float inside blocks of 256 elements (vectorized, several lanes) and in
// double across blocks, so a row of 10^5 elements loses no more than a short one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

#include "core/kernels/kernels.hpp"

namespace nl {

constexpr int64_t kRowNormBackwardMaxRows = 64;

struct RowNormKernels {
  // Biased mean and variance by the corrected two-pass algorithm:
  //   mean0 = sum(x)/n;  d = x - mean0;  mean = mean0 + sum(d)/n;
  //   var = (sum(d^2) - sum(d)^2/n) / n   (>= 0)
  // Stable for large means: with mean 1e4 and variance 1e-2, E[x^2]-E[x]^2 in float is noise,
  // this is exact to float rounding of x itself.
  void (*moments)(const float* x, int64_t n, float* mean, float* var);
  // sum(x^2) / n.
  float (*mean_square)(const float* x, int64_t n);
  // y = x * a + b (normalize and affine folded into one FMA); relu: y = max(0, that).
  void (*scale_shift)(const float* x, float a, float b, float* y, int64_t n, bool relu);
  // y = max(x * a + b, tau) (FRN + TLU).
  void (*scale_shift_max)(const float* x, float a, float b, float tau, float* y, int64_t n);
  // The next two take relu_a, relu_b: null, or (GN / IN + ReLU fused) the a and b of the
  // forward's scale_shift, and then dy counts only where x * a + b > 0, recomputed from x by the
  // forward's own expression (ReLU's derivative applied on the fly; no saved output is read).
  // *sum_dy = sum(dy), *sum_dy_x = sum(dy * (x - center)). Centering by the mean keeps the
  // sum exact when x has a large mean (sum(dy*x) - mean*sum(dy) would cancel).
  void (*sums_dy_dyx)(const float* dy, const float* x, const float* relu_a, const float* relu_b, float center,
                      int64_t n, float* sum_dy, float* sum_dy_x);
  // dx = a * dy + b * (x - center) + c: a closed-form norm backward with per-row constants.
  void (*affine_backward)(const float* dy, const float* x, const float* relu_a, const float* relu_b, float a,
                          float b, float center, float c, float* dx, int64_t n);

  // LayerNorm over one row with per-element gamma/beta (either may be null: 1 / 0).
  //   y = (x - mean) * rstd * gamma + beta;   relu (gamma and beta given): y = max(0, that)
  void (*layer_norm_forward)(const float* x, const float* gamma, const float* beta, float mean, float rstd,
                             float* y, int64_t n, bool relu);
  // LayerNorm backward of `rows` consecutive rows of n floats (row r at offset r * n; mean and
  // rstd per row; rows <= kRowNormBackwardMaxRows). Names as in layer_norm.hpp:
  //   xhat = (x - mean) * rstd,  g = dy * gamma
  //   dnorm_mean = mean(g),  dnorm_norm_mean = mean(g * xhat)
  //   dx = rstd * (g - dnorm_mean - xhat * dnorm_norm_mean)         (assigned; null = skip)
  //   dgamma += sum over the rows of dy * xhat,  dbeta += sum of dy  (accumulated; null = skip)
  // Several rows per call so that dgamma and dbeta are read and written once per call, not once
  // per row (see row_norm_backward_rows). relu (gamma and beta given): the forward's ReLU was
  // fused, and dy counts only where its affine output, recomputed from x, was > 0.
  void (*layer_norm_backward)(const float* dy, const float* x, const float* gamma, const float* beta,
                              const float* mean, const float* rstd, int64_t rows, float* dx, float* dgamma,
                              float* dbeta, int64_t n, bool relu);

  // RMSNorm: y = x * rstd * gamma (gamma may be null).
  void (*rms_norm_forward)(const float* x, const float* gamma, float rstd, float* y, int64_t n);
  // RMSNorm backward of `rows` consecutive rows (as layer_norm_backward; names as in rms_norm.hpp):
  //   xhat = x * rstd, g = dy * gamma, dnorm_norm_mean = mean(g * xhat)
  //   dx = rstd * (g - xhat * dnorm_norm_mean) (assigned; null = skip);  dgamma += dy * xhat (null = skip)
  void (*rms_norm_backward)(const float* dy, const float* x, const float* gamma, const float* rstd, int64_t rows,
                            float* dx, float* dgamma, int64_t n);

  // FRN + TLU backward, with y = x * a + b recomputed and the TLU mask m = (y > tau):
  //   *sum_dy = sum(dz * m), *sum_dy_x = sum(dz * m * x), *sum_dtau = sum(dz * (1 - m))
  void (*frn_backward_sums)(const float* dz, const float* x, float a, float b, float tau, int64_t n,
                            float* sum_dy, float* sum_dy_x, float* sum_dtau);
  //   dx = A * dz * m + B * x
  void (*frn_backward_dx)(const float* dz, const float* x, float a, float b, float tau, float A, float B,
                          float* dx, int64_t n);
};

const RowNormKernels& row_norm_kernels();                    // for simd_level()
const RowNormKernels& row_norm_kernels_for(SimdLevel level);  // a specific level (tests)

}  // namespace nl

namespace nl {

// The threading of LayerNorm's and RMSNorm's backward, whose d-gamma and d-beta ([D] each,
// accumulated; null = not needed) sum over all R rows of D floats. The rows are split into
// one chunk per thread (1 when the work is too small to be worth a fork); each chunk gets its
// own zeroed [D] buffers, and fn(r, rows, dgamma_part, dbeta_part) runs over the chunk in calls
// of row_norm_backward_rows(D) rows (parts null where the gradient is). The buffers are then
// added into dgamma / dbeta in chunk order: the result depends on the thread count, never on
// timing.
void row_norm_backward_by_chunks(int64_t R, int64_t D, float* dgamma, float* dbeta,
                                 const std::function<void(int64_t r, int64_t rows, float* dgamma_part,
                                                          float* dbeta_part)>& fn);

// Parallel grain of the row norms: each thread gets at least this many values, so small
// tensors stay on one thread. Waking the pool and joining it costs more than normalizing
// 64K floats, and far more when the machine is loaded and a worker waits for a core.
constexpr int64_t kMinValuesPerThread = int64_t{1} << 16;

// Rows per layer_norm_backward / rms_norm_backward call: as many as keep their x and dy
// (~512 KB) in L2 between the kernel's two passes, at most kRowNormBackwardMaxRows. Depends on
// D only (deterministic).
inline int64_t row_norm_backward_rows(int64_t row_len) {
  return std::clamp<int64_t>((int64_t{1} << 16) / std::max<int64_t>(1, row_len), 1, kRowNormBackwardMaxRows);
}

}  // namespace nl
