// normlab norms: Filter Response Normalization with a Thresholded Linear Unit
// (Singh & Krishnan 2019). It replaces norm *and* activation; no mean is subtracted and
// nothing is shared across the batch, so it behaves the same at batch 1 and 128.
//
// x: [N, C, H, W] (or [N, C]: H*W = 1, the paper's fully connected case, where FRN
// degenerates to ~sign(x) unless eps is large; the paper learns eps there, we do not).
// Forward, per plane (n, c) (reduced over its L = H*W values):
//   nu2  = sum(x^2) / L,   r = 1 / sqrt(nu2 + eps)             (eps = 1e-6, fixed)
//   y    = gamma[c] * x * r + beta[c]   computed as  y = x * a + b,  a = gamma[c] * r, b = beta[c]
//   z    = max(y, tau[c])                                       (TLU)
// Backward, per plane, with the TLU mask m = (y > tau) (ties go to tau; they have measure 0):
//   dy   = dz * m,            dtau[c] += sum(dz * (1 - m))
//   dbeta[c] += sum(dy),      dgamma[c] += r * sum(dy * x)
//   dx   = gamma * r * (dy - x * r^2 * mean(dy * x))
//        = A * dz * m + B * x,   A = gamma * r,   B = -gamma * r^3 * sum(dy * x) / L
// Per-(n, c) sums go to an [N, C] scratch and are summed over n in order (deterministic).
#pragma once

#include "layers/module.hpp"

namespace nl {

Tensor filter_response_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& tau,
                            float eps = 1e-6f);

class FilterResponseNorm : public Module {
 public:
  explicit FilterResponseNorm(int64_t num_features, float eps = 1e-6f);
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x);  // primitive ops; max(y, tau) as relu(y - tau) + tau
  std::string name() const override;

  int64_t num_features;
  float eps;
  Tensor weight, bias, tau;  // gamma (init 1), beta (init 0), tau (init 0): [C]
};

}  // namespace nl
