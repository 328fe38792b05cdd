// normlab layers: BatchNorm (Ioffe & Szegedy 2015), PyTorch's BatchNorm1d / BatchNorm2d.
//
// Forward (training), per channel c over its M = N*S values (layout, running statistics and
// statistics groups in batch_stat_norm.hpp):
//   mean = 1/M sum x                      var = 1/M sum (x - mean)^2   (biased)
//   rstd = 1 / sqrt(var + eps)            xhat = (x - mean) * rstd
//   y    = xhat * gamma + beta   computed as  y = (x - mean) * a + b,  a = rstd * gamma, b = beta
// Backward, with the names of the code (batch_norm_op.cpp):
//   dgamma = sum dy * xhat                dbeta = sum dy
//   dxhat  = dy * gamma
//   dx     = rstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
//          = a * (dy - sum_dy / M - xhat * sum_dy_xhat / M)      (sum_dy_xhat = sum dy * xhat)
// Eval: mean, var are running_mean, running_var, constants in backward: dx = dy * a.
#pragma once

#include <string>

#include "layers/norm/batch_stat_norm.hpp"

namespace nl {

class BatchNorm : public BatchStatNorm {
 public:
  // dims = 1: BatchNorm1d, input [N, C] or [N, C, L]; dims = 2: BatchNorm2d, input [N, C, H, W].
  BatchNorm(int64_t num_features, int dims = 2, BatchNormOptions options = {});
  Tensor forward(const Tensor& x) override;  // the fused kernel: one autograd node
  // relu(forward(x)) as one pass and one node (batch_norm_op.hpp, "ReLU fused"): what
  // make_norm_act builds for bn followed by relu. Same bits as the two ops; with a diagnostics
  // observer attached it runs them as two, since the observer reads the output before the ReLU.
  Tensor forward_relu(const Tensor& x);
  // The same layer built only from primitive autograd ops (mean, var, sub, mul, rsqrt, ...),
  // including the running-statistics update. Slow; the fused kernel is tested against it.
  // Each statistics group is selected with a 0/1 mask over N and normalized on its own.
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;  // "BatchNorm1d(C)" / "BatchNorm2d(C, stat_batch=16)"

  Tensor weight, bias;  // gamma [C] (init 1), beta [C] (init 0); undefined if !affine
  int dims;
  BatchNormOptions options;

 private:
  Tensor normalize(const Tensor& x, bool relu);
};

}  // namespace nl
