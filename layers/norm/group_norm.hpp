// normlab norms: Group Normalization (Wu & He 2018), PyTorch's nn.GroupNorm.
//
// x: [N, C, *] viewed as [N, C, L] (L = H*W for images). The C channels are split into G
// contiguous groups of K = C/G channels; each (sample n, group g) is one "row" of
// M = K*L elements, normalized on its own (no batch statistics: batch 2 is as good as 128).
// G = 1 is LayerNorm over (C, H, W); G = C is InstanceNorm (both up to the affine layout:
// GN's gamma/beta are per channel).
//
// Forward, per row (n, g) (reduced over its K channels x L positions; biased variance):
//   mean = sum(x) / M,   var = sum((x - mean)^2) / M,   rstd = 1 / sqrt(var + eps)
//   y[n,c,l] = (x - mean) * rstd * gamma[c] + beta[c]
//            = x * a[c] + b[c],   a = rstd * gamma[c],   b = beta[c] - mean * a   (one FMA)
//
// Backward, per row (n, g) with g = dy * gamma[c], xhat = (x - mean) * rstd:
//   first, per channel c of the group (one sweep over its L values):
//     db[n,c] = sum_l dy,        ds[n,c] = sum_l dy * (x - mean)
//   then the two row reductions come from these K numbers, not from another sweep:
//     dnorm_mean      = mean(g)        = sum_c gamma[c] * db[n,c] / M
//     dnorm_norm_mean = mean(g * xhat) = rstd * sum_c gamma[c] * ds[n,c] / M
//   dx = rstd * (g - dnorm_mean - xhat * dnorm_norm_mean)
//      = (rstd * gamma[c]) * dy + (-rstd^2 * dnorm_norm_mean) * (x - mean) + (-rstd * dnorm_mean)
//   dgamma[c] = sum_n ds[n,c] * rstd[n,g],   dbeta[c] = sum_n db[n,c]
// The per-(n, c) partial sums are written by whichever thread owns row (n, g) and summed
// over n afterwards in order: deterministic for any thread count. Saved: x, mean, rstd [N, G].
//
// ReLU fused (relu: z = max(0, y), what make_norm_act builds for gn / in followed by relu): the
// output is z, and the backward above runs with dy masked where y <= 0, y recomputed from x as
// x * a[c] + b[c] (the forward's expression: the same bits as relu(group_norm(x)) in two ops).
#pragma once

#include "layers/module.hpp"

namespace nl {

// Raw kernels, contiguous arrays (shapes beside each pointer), exposed for InstanceNorm/FRN.
// y: [N, C, L], mean/rstd/var: [N, G] (var may be null; biased), gamma/beta: [C] or null;
// relu: y = max(0, the normalized value).
void group_norm_forward(float* y, float* mean, float* rstd, float* var, const float* x, const float* gamma,
                        const float* beta, int64_t N, int64_t C, int64_t L, int64_t G, float eps, bool relu);
// dx: [N, C, L] (assigned; null = skip), dgamma/dbeta: [C] (accumulated; null = skip);
// relu: the forward's was fused (beta then gives the pre-ReLU value; null = 0).
void group_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* gamma, const float* beta, const float* mean, const float* rstd, int64_t N,
                         int64_t C, int64_t L, int64_t G, bool relu);

// Fused, one autograd node. x: [N, C, *]; weight/bias: [C] or undefined. When given,
// *mean_out / *var_out receive the per-(n, group) mean and biased variance, shape [N, G].
// relu: relu(group_norm(x)) in the same pass and node.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, float eps = 1e-5f,
                  Tensor* mean_out = nullptr, Tensor* var_out = nullptr, const char* layer = "GroupNorm",
                  bool relu = false);

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, float eps = 1e-5f, bool affine = true);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one pass and node (above, "ReLU fused"); run as two ops when a
  // diagnostics observer is attached, since it reads the output before the ReLU.
  Tensor forward_relu(const Tensor& x);
  Tensor reference_forward(const Tensor& x);  // from primitive autograd ops
  std::string name() const override;

  int64_t num_groups, num_channels;
  float eps;
  Tensor weight, bias;  // [C], init 1 and 0 (undefined without affine)

 private:
  Tensor normalize(const Tensor& x, bool fused_relu);
};

}  // namespace nl
