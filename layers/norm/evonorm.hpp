// normlab norms: EvoNorm-S0 and EvoNorm-B0 (Liu, Brock, Simonyan & Le 2020, "Evolving
// Normalization-Activation Layers"). Both replace norm *and* activation. Formulas as the
// paper's Figure/Algorithm pseudocode (TF moments = biased variances), x: [N, C, H, W]
// (or [N, C], H = W = 1):
//
// EvoNorm-S0 (sample-based, no batch statistics), G groups of C/G contiguous channels:
//   group_std(x)[n,c] = sqrt(var over (C/G, H, W) of x's group + eps)     (biased var)
//   y = x * sigmoid(v[c] * x) / group_std(x) * gamma[c] + beta[c]
// EvoNorm-B0 (batch-based):
//   batch_std[c]      = sqrt(var over (N, H, W) of channel c + eps)        (biased; training)
//                     = sqrt(running_var[c] + eps)                          (eval)
//   instance_std[n,c] = sqrt(var over (H, W) + eps)
//   y = x / max(batch_std, v[c] * x + instance_std) * gamma[c] + beta[c]
//   running_var = (1 - momentum) * running_var + momentum * var * M/(M-1)   (M = N*H*W;
//   unbiased, momentum 0.1: BatchNorm's conventions; the paper keeps a moving average too)
// Parameters: weight (gamma, init 1), bias (beta, init 0), v (init 1), all [C]; eps 1e-5.
//
// Implementation: forward() *is* the composite of primitive autograd ops (mean, sub, mul,
// sqrt, sigmoid, relu for max(a, b) = b + relu(a - b)); there is no fused kernel for
// EvoNorm yet, so its backward is autograd's, several passes over memory. It is exact,
// checked against PyTorch fixtures and by gradcheck.
#pragma once

#include "layers/module.hpp"

namespace nl {

class EvoNormS0 : public Module {
 public:
  EvoNormS0(int64_t num_features, int64_t groups = 8, float eps = 1e-5f);
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x) { return forward(x); }  // forward is the composite
  std::string name() const override;

  int64_t num_features, groups;
  float eps;
  Tensor weight, bias, v;  // [C]
};

class EvoNormB0 : public Module {
 public:
  explicit EvoNormB0(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x) { return forward(x); }
  std::string name() const override;

  int64_t num_features;
  float eps, momentum;
  Tensor weight, bias, v;  // [C]
  Tensor running_var;      // [C] buffer, init 1
  int64_t num_batches_tracked = 0;
};

}  // namespace nl
