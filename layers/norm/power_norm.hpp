// normlab norms: PowerNorm (Shen, Yao, Gholami, Mahoney & Keutzer 2020, "PowerNorm: Rethinking
// Batch Normalization in Transformers"), the official MaskPowerNorm without padding masks.
//
// BatchNorm fails in Transformers because the batch statistics of token features are noisy
// (their figure: |mu_B - mu| and sigma_B^2 / sigma^2 far from 0 and 1). PowerNorm keeps BN's
// idea -- per-feature statistics over the batch, running statistics at inference -- with
// three changes: no mean is subtracted (only the quadratic mean, which is steadier), after a
// warm-up the forward pass divides by the *running* quadratic mean instead of the batch's,
// and the backward pass replaces the batch's gradient correction by a running estimate.
//
// x is [..., C] with the features last, viewed as [R, C]: R rows (tokens: R = B*T), C features.
// Buffers: running_phi [C] (init 1), ema_gz [C] (init 0), iters [] (training steps so far).
//
// 1. GroupScaling1D, per row and per group of C/G consecutive features (G = options.groups;
//    1: the whole token). It is RMSNorm without gamma, and uses rms_norm's fused kernel:
//      s = x / sqrt(mean_group(x^2) + eps)
//
// 2. The power function, per feature c over the R rows; t = iters after this step's +1:
//      qm_B   = 1/R sum_r s^2                  the batch's quadratic mean (no mean subtracted)
//      phi    = qm_B          if t <= warmup    (warm-up: batch statistics, like BN)
//             = running_phi   if t >  warmup    (the running value before this step's update)
//      rstd   = 1 / sqrt(phi + eps),   rstd_B = 1 / sqrt(qm_B + eps)
//      z      = s * rstd,              y = z * gamma + beta
//    then running_phi is updated (this is the official order and rule, including its quirk:
//    during warm-up both lines run, the cumulative average first):
//      t < warmup:  running_phi = running_phi * (t - 1) / t + qm_B / t
//      always:      running_phi = alpha_fwd * running_phi + (1 - alpha_fwd) * qm_B
//    Eval: z = s / sqrt(running_phi + eps), nothing is updated.
//
// Backward of the power function, with g = dy * gamma (dgamma = sum_r dy * z, dbeta = sum_r dy
// in every mode; ds then goes through GroupScaling's exact backward):
//    exact (options.backward = exact: the gradient of the forward above, gradcheck-able)
//      t <= warmup:  dnorm_norm_mean = mean_r(g * z)
//                    ds = rstd_B * (g - z * dnorm_norm_mean)        (RMSNorm's backward, down a column)
//      t >  warmup:  ds = g * rstd                                  (running_phi is a constant)
//    approximate (the official PowerFunction.backward; the default)
//      nu      = (1 - alpha_bkw) * ema_gz          a running estimate of dnorm_norm_mean
//      g_tilde = g - nu * z
//      ds      = rstd_B * g_tilde                  rstd_B: the *batch's*, also after warm-up
//      ema_gz += mean_r(g_tilde * z)               = dnorm_norm_mean - nu * mean_r(z^2)
//    (ema_gz is updated in backward, from its value before this step.)
// Where the approximate backward differs from the exact gradient:
//  * in warm-up the forward is BN-like (batch qm_B), but the correction term uses nu, a
//    running average, instead of this batch's dnorm_norm_mean. With mean_r(z^2) ~ 1 the
//    update is nu <- alpha_bkw * nu + (1 - alpha_bkw) * dnorm_norm_mean: an exponential
//    average of past batches' values, so ds is exact only if dnorm_norm_mean never changed;
//  * after warm-up the forward divides by running_phi, a constant of this batch, so the exact
//    gradient has no correction at all and scale rstd; the official one keeps the -nu * z
//    term (the paper's account of the running statistic's dependence on past batches) and
//    scales by rstd_B, the batch's, although the forward did not use it.
// Measured sizes of the difference: docs/diagnostics.md ("PowerNorm's approximate backward").
//
// The fused op reuses the BatchNorm family's [N, C] column kernels (channel_norm_kernels.hpp)
// with a zero mean: qm_B = m2 / R + mean^2 from their moments, y = s * a + b with
// a = rstd * gamma, and the two backward reductions sum_dy = sum dy, sum_dy_s = sum dy * s:
//   dnorm_norm_mean = gamma * rstd * sum_dy_s / R,   mean_r(z^2) = rstd^2 * qm_B
//   ds = dy * (gamma * rstd_B) + s * u,   u = -rstd_B * rstd_B * dnorm_norm_mean   (exact, warm-up)
//                                         u = -rstd_B * nu * rstd                  (approximate)
//   ds = dy * (gamma * rstd)                                                        (exact after, eval)
// Each feature's numbers depend only on its own column: results do not depend on the threads.
//
// Choices: training with one row (R = 1) throws nl::Error, as BatchNorm does (the official
// code does not check): nothing is subtracted, but z = s / sqrt(s^2 + eps) would be +-1 and
// its exact gradient ~0 (BN's collapse, tests/test_bn_two_values.cpp, in its one-value form).
// Statistics span every row of the batch, so at the tokens site a token's output depends on
// other tokens and on later positions (as BN's: a lesson for a causal LM, not a bug).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layers/module.hpp"

namespace nl {

enum class PowerNormBackward { approximate, exact };

struct PowerNormOptions {
  float eps = 1e-5f;          // GroupScaling1D and the power function (official: 1e-5 both)
  float alpha_fwd = 0.9f;     // running_phi's average (official default)
  float alpha_bkw = 0.9f;     // the backward's running statistic (official default)
  int64_t warmup_steps = 10000;  // official default (fairseq's warmup_iters)
  int64_t groups = 1;            // GroupScaling1D groups; must divide C (official default 1)
  bool affine = true;
  PowerNormBackward backward = PowerNormBackward::approximate;
};

// "approximate" | "exact"; parse throws nl::Error naming the valid values.
std::string power_norm_backward_name(PowerNormBackward b);
PowerNormBackward parse_power_norm_backward(const std::string& name);

class PowerNorm : public Module {
 public:
  explicit PowerNorm(int64_t num_features, PowerNormOptions options = {});
  Tensor forward(const Tensor& x) override;  // the fused op: GroupScaling1D node + power-function node
  // The same layer from primitive autograd ops (mul, mean, rsqrt, ...), buffers updated the
  // same way: its gradient is the *exact* one (the fused op with backward = exact equals it).
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;  // "PowerNorm(C)"
  int64_t num_features() const { return num_features_; }
  // True when the next training step normalizes with the batch's quadratic mean.
  bool in_warmup() const;

  Tensor weight, bias;                  // [C], init 1 and 0 (undefined without affine)
  Tensor running_phi, ema_gz, iters;    // buffers (checkpointed): [C] = 1, [C] = 0, [] = 0
  PowerNormOptions options;

 private:
  int64_t num_features_;
  Tensor group_scaling(const Tensor& x2d) const;            // fused (rms_norm without gamma)
  Tensor group_scaling_reference(const Tensor& x2d) const;  // primitive ops
  void update_running_phi(const std::vector<float>& qm_batch, float t);
};

}  // namespace nl
