// normlab norms: EvoNorm-S0 and EvoNorm-B0 (Liu, Brock, Simonyan & Le 2020, "Evolving
// Normalization-Activation Layers"). Both replace norm *and* activation. Formulas as the
// paper's Figure/Algorithm pseudocode (TF moments = biased variances), x: [N, C, H, W]
// (or [N, C], H = W = 1), viewed as [N, C, L], L = H*W:
//
// EvoNorm-S0 (sample-based, no batch statistics), G groups of K = C/G contiguous channels:
//   group_std(x)[n,c] = sqrt(var over (C/G, H, W) of x's group + eps)     (biased var)
//   y = x * sigmoid(v[c] * x) / group_std(x) * gamma[c] + beta[c]
// EvoNorm-B0 (batch-based):
//   batch_std[c]      = sqrt(var over (N, H, W) of channel c + eps)        (biased; training)
//                     = sqrt(running_var[c] + eps)                          (eval)
//   instance_std[n,c] = sqrt(var over (H, W) + eps)                         (0 var for [N, C])
//   y = x / max(batch_std, v[c] * x + instance_std) * gamma[c] + beta[c]
//   running_var = (1 - momentum) * running_var + momentum * var * M/(M-1)   (M = N*H*W;
//   unbiased, momentum 0.1: BatchNorm's conventions; the paper keeps a moving average too)
// Parameters: weight (gamma, init 1), bias (beta, init 0), v (init 1), all [C]; eps 1e-5.
//
// forward() is fused: one autograd node, the closed-form backward below, kernels in
// kernels/evonorm_kernels*. reference_forward() is the composite of primitive autograd ops
// (mean, sub, mul, sqrt, sigmoid, relu for max(a, b) = b + relu(a - b)); the tests hold
// the two equal on outputs and on every gradient.
//
// ---- S0, fused. Per row (n, g) of M = K*L values (statistics two-pass, in double):
//   mean, var over the row;  rstd = 1 / sqrt(var + eps)
//   s = sigmoid(v[c] * x),   num = x * s
//   y = num * rstd * gamma[c] + beta[c]  =  x * s * a + b,   a = rstd * gamma[c], b = beta[c]
// Backward, with g = dy * gamma[c]. Per channel c of the row, one sweep over its L values:
//   sum_dy[n,c] = sum dy,   sum_dy_num[n,c] = sum dy * num,   sum_dy_x2ds[n,c] = sum dy * x^2 * s * (1 - s)
// per row, from those K numbers:  sum_g_num = sum_c gamma[c] * sum_dy_num[n,c]   (= dL/drstd)
//   dx = rstd * g * dnum_dx - rstd^3 * sum_g_num / M * (x - mean),   dnum_dx = s + v x s (1 - s)
//      = A * dy * dnum_dx + B * (x - mean),    A = rstd * gamma[c],   B = -rstd^3 * sum_g_num / M
//   (drstd/dvar = -rstd^3 / 2, dvar/dx = 2 (x - mean) / M)
//   dgamma[c] += sum_n rstd * sum_dy_num,   dbeta[c] += sum_n sum_dy,
//   dv[c]     += sum_n rstd * gamma[c] * sum_dy_x2ds          (d sigmoid(u)/du = s (1 - s))
//
// ---- B0, fused. Per plane (n, c) of L values: inst_mean, inst_var (two-pass, double);
//   training: batch_mean[c], batch_var[c] merged from the planes' moments in order of n
//   (Chan: M2 = sum_n (L * inst_var + L * (inst_mean - batch_mean)^2)), no third pass.
//   b = v[c] * x + inst_std,   den = max(batch_std, b),   y = x / den * gamma[c] + beta[c]
// Backward, with g = dy * gamma[c] and the branch mask inst = !(batch_std > b): the max()
// sends the gradient to the active branch per element; a tie (measure zero) goes to the
// instance branch, as the composite's relu'(0) = 0 does (PyTorch's maximum would split it).
//   dden = -g * x / den^2
//   per plane:  sum_dy, sum_dy_xden = sum dy * x / den,
//               d_inst_std = sum inst * dden,  d_v = sum inst * dden * x,
//               d_batch_std = sum (1 - inst) * dden
//   per channel (training only): d_batch_std[c] = sum_n d_batch_std[n,c]
//   dx = g / den + inst * dden * v
//      + ci * (x - inst_mean)   with ci = d_inst_std / (L * inst_std)       (dstd/dx = (x - mean) / (L std))
//      + cb * (x - batch_mean)  with cb = d_batch_std[c] / (M * batch_std)  (training; eval: cb = 0,
//                                                                            running_var is a constant)
//   dgamma[c] += sum_n sum_dy_xden,   dbeta[c] += sum_n sum_dy,   dv[c] += sum_n d_v
//
// Centering: the mean is kept in double and passed to the kernels as a float `center` plus
// a constant c0 = -B * (mean - center) (B0: -ci * ... - cb * ...), so (x - mean) is exact
// even at mean 1e4, where the float mean alone is off by up to 5e-4.
// Determinism: the per-(n, c) sums go to [N, C] scratch arrays written by whichever thread
// owns the row/plane, and are reduced over n in order: the same bits for any thread count.
// Saved for backward: x and per-row/plane/channel statistics (no sigmoid or den tensors;
// both are recomputed).
#pragma once

#include "layers/module.hpp"

namespace nl {

// Fused EvoNorm-S0. x: [N, C, H, W] or [N, C]; weight/bias/v: [C]; C % groups == 0.
Tensor evonorm_s0(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, const Tensor& v,
                  float eps = 1e-5f);
// Fused EvoNorm-B0. training: batch statistics (needs N*H*W > 1), and *batch_var_out (if
// given) receives the biased batch variance [C] for the running average; otherwise
// batch_std = sqrt(running_var + eps), running_var: [C].
Tensor evonorm_b0(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& v,
                  const Tensor& running_var, bool training, float eps = 1e-5f, Tensor* batch_var_out = nullptr);

class EvoNormS0 : public Module {
 public:
  EvoNormS0(int64_t num_features, int64_t groups = 8, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;    // fused
  Tensor reference_forward(const Tensor& x);  // primitive autograd ops
  std::string name() const override;

  int64_t num_features, groups;
  float eps;
  Tensor weight, bias, v;  // [C]
};

class EvoNormB0 : public Module {
 public:
  explicit EvoNormB0(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) override;    // fused; training updates running_var
  Tensor reference_forward(const Tensor& x);  // primitive autograd ops; updates running_var the same way
  std::string name() const override;

  int64_t num_features;
  float eps, momentum;
  Tensor weight, bias, v;  // [C]
  Tensor running_var;          // [C] buffer, init 1
  Tensor num_batches_tracked;  // [] buffer: the count of training updates (saved, so --resume continues it)

 private:
  void update_running_var(const float* batch_var, int64_t M);  // batch_var: [C], biased
};

// Shared by the two layers (evonorm_s0.cpp): input [N, C, H, W] or [N, C] with C channels,
// parameters [C]; the biased variance of x over `dims` (keepdim) from primitive ops.
namespace evonorm_detail {
void check_input(const Tensor& x, int64_t C, const std::string& layer);
void check_params(const Tensor& x, const std::vector<Tensor>& params, const char* layer);
Tensor biased_var(const Tensor& x, const std::vector<int64_t>& dims);
}  // namespace evonorm_detail

}  // namespace nl
