// normlab layers: fused per-channel normalization kernels (the BatchNorm family's hot loops).
//
// x is [N, C, S] contiguous: channel c's values are N planes of S floats at
// x + (n*C + c)*S. Every kernel handles one channel c and samples [n0, n1), loops n
// outer and the plane inner (the vectorized loop), and never allocates. The callers
// (batch_norm_op.cpp) run them per channel under parallel_for, so all passes over one
// channel happen while its planes are still in L2.
//
// Like core/kernels, channel_norm_kernels_impl.inl is compiled three times
// (normlab_simd_kernel in CMakeLists.txt) and chosen by simd_level().
#pragma once

#include <cstdint>

#include "core/kernels/kernels.hpp"

namespace nl {

struct ChannelNormKernelTable {
  // Over the values of channel c in samples [n0, n1):
  // mean = 1/M sum x; m2 = sum (x - mean)^2 (null m2: mean only). Two passes, the second
  // one corrected (mean += sum(x - mean)/M); partial sums per plane in float lanes and
  // across planes in double: exact enough for mean 1e4 with variance 1e-2.
  void (*moments)(const float* x, int64_t C, int64_t S, int64_t n0, int64_t n1, int64_t c, double* mean,
                  double* m2);
  // y = (x - mean) * a + b   (one sub + one FMA per element); relu: y = max(0, that)
  void (*scale_shift)(const float* x, float* y, int64_t C, int64_t S, int64_t n0, int64_t n1, int64_t c,
                      float mean, float a, float b, bool relu);
  // The backward kernels take relu_a, relu_b: null, or (BN + ReLU fused) the a and b the forward
  // used, and then dy counts only where (x - mean) * a + b > 0, recomputed from x by the
  // forward's own expression (ReLU's derivative, applied on the fly; no saved output is read).
  // sum_dy = sum dy;  sum_dy_xmu = sum dy * (x - mean)  (null: skipped)
  void (*grad_sums)(const float* x, const float* dy, const float* relu_a, const float* relu_b, int64_t C, int64_t S,
                    int64_t n0, int64_t n1, int64_t c, float mean, double* sum_dy, double* sum_dy_xmu);
  // dx = dy * a + (x - mean) * slope + shift   (written)
  void (*grad_input)(const float* x, const float* dy, const float* relu_a, const float* relu_b, float* dx, int64_t C,
                     int64_t S, int64_t n0, int64_t n1, int64_t c, float mean, float a, float slope, float shift);

  // The same four steps for S == 1 (BatchNorm1d on [N, C]): a channel is a *column* of the
  // row-major [N, C] matrix, so one value per plane would leave every loop scalar. These
  // walk rows n in [n0, n1) and vectorize across the channels [c0, c1) of each row.
  // Per-channel arrays are indexed by the absolute channel c.
  // mean[c], m2[c] (sum of squared deviations): per block of rows, a corrected two-pass
  // mean/M2 in float (the block is in cache), merged into doubles by Chan's formula.
  void (*col_moments)(const float* x, int64_t C, int64_t n0, int64_t n1, int64_t c0, int64_t c1, double* mean,
                      double* m2);
  // y = (x - mean[c]) * a[c] + b[c]; relu: y = max(0, that)
  void (*col_scale_shift)(const float* x, float* y, int64_t C, int64_t n0, int64_t n1, int64_t c0, int64_t c1,
                          const float* mean, const float* a, const float* b, bool relu);
  // sum_dy[c] = sum dy;  sum_dy_xmu[c] = sum dy * (x - mean[c])   (relu_a[c], relu_b[c] as above)
  void (*col_grad_sums)(const float* x, const float* dy, const float* relu_a, const float* relu_b, int64_t C,
                        int64_t n0, int64_t n1, int64_t c0, int64_t c1, const float* mean, double* sum_dy,
                        double* sum_dy_xmu);
  // dx = dy * a[c] + (x - mean[c]) * slope[c] + shift[c]   (written)
  void (*col_grad_input)(const float* x, const float* dy, const float* relu_a, const float* relu_b, float* dx,
                         int64_t C, int64_t n0, int64_t n1, int64_t c0, int64_t c1, const float* mean, const float* a,
                         const float* slope, const float* shift);
};

const ChannelNormKernelTable& channel_norm_kernels();  // for simd_level()
const ChannelNormKernelTable& channel_norm_kernels_for(SimdLevel level);

}  // namespace nl
