// normlab norms: the fused per-plane kernels behind EvoNorm-S0 and EvoNorm-B0, with SIMD
// dispatch (the math and the names are in layers/norm/evonorm.hpp).
//
// Same convention as row_norm_kernels: evonorm_kernels_impl.inl holds plain loops and is
// compiled three times (normlab_simd_kernel in CMakeLists.txt, one translation unit per
// level); evonorm_kernels() returns the table for the current simd_level().
//
// Every kernel does one contiguous run of n floats: one channel's H*W plane (both norms),
// or a whole (n, group) row for the S0 statistics. Threading and the (n, c, group)
// bookkeeping live in evonorm_s0.cpp / evonorm_b0.cpp. The kernels never allocate.
//
// S0's s = sigmoid(v * x) is not computed here: evonorm_s0.cpp fills it with core's vectorized
// sigmoid (kernels().sigmoid), the very function the composite reference calls, so the
// fused and composite layers see the same s. The kernels take it as an input array.
//
// Sums are taken in float inside blocks of 256 elements (vectorized, several lanes) and in
// double across blocks, like the row kernels.
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl {

struct EvoNormKernels {
  // Biased moments by the corrected two-pass algorithm (as RowNormKernels::moments), kept
  // in double: mean = mean0 + sum(x - mean0)/n,  var = (sum(d^2) - sum(d)^2/n)/n  (>= 0).
  // The double mean matters: its float rounding (5e-4 at mean 1e4) would otherwise shift
  // every (x - mean) of the backward, and B0 merges per-plane moments into batch moments.
  void (*moments)(const float* x, int64_t n, double* mean, double* var);

  // ---- EvoNorm-S0, one channel plane; s = sigmoid(v * x) given.
  //   y = x * s * a + b                       (a = rstd * gamma[c], b = beta[c])
  void (*s0_forward)(const float* x, const float* s, float a, float b, float* y, int64_t n);
  //   *sum_dy = sum(dy),  *sum_dy_num = sum(dy * num)   (num = x * s),
  //   *sum_dy_x2ds = sum(dy * x^2 * s * (1 - s))
  void (*s0_backward_sums)(const float* dy, const float* x, const float* s, int64_t n, float* sum_dy,
                           float* sum_dy_num, float* sum_dy_x2ds);
  //   dx = A * dy * (s + v * x * s * (1 - s)) + B * (x - center) + c0     (assigned)
  void (*s0_backward_dx)(const float* dy, const float* x, const float* s, float A, float v, float B, float center,
                         float c0, float* dx, int64_t n);

  // ---- EvoNorm-B0, one plane (n, c): den = max(batch_std, v * x + inst_std).
  //   y = x / den * gamma + beta
  void (*b0_forward)(const float* x, float batch_std, float v, float inst_std, float gamma, float beta, float* y,
                     int64_t n);
  // With g = dy * gamma, dden = -g * x / den^2 and the branch mask inst = !(batch_std > b):
  //   sums[0] = sum(dy)                 sums[1] = sum(dy * x / den)
  //   sums[2] = sum(inst * dden)        sums[3] = sum(inst * dden * x)
  //   sums[4] = sum((1 - inst) * dden)
  void (*b0_backward_sums)(const float* dy, const float* x, float batch_std, float v, float inst_std, float gamma,
                           int64_t n, float* sums);
  //   dx = g / den + inst * dden * v + ci * (x - inst_mean) + cb * (x - batch_mean) + c0   (assigned)
  void (*b0_backward_dx)(const float* dy, const float* x, float batch_std, float v, float inst_std, float gamma,
                         float ci, float inst_mean, float cb, float batch_mean, float c0, float* dx, int64_t n);
};

const EvoNormKernels& evonorm_kernels();                    // for simd_level()
const EvoNormKernels& evonorm_kernels_for(SimdLevel level);  // a specific level (tests)

}  // namespace nl
