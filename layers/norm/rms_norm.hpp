// normlab norms: RMSNorm (Zhang & Sennrich 2019). torch 1.13 has no nn.RMSNorm; semantics
// follow the later torch.nn.RMSNorm with an explicit eps (default here 1e-5, as the
// benchmark's composite; torch's default is the dtype's machine epsilon).
//
// x is viewed as [R, D] with D = prod(normalized_shape), the trailing dims.
// Forward, per row (reduced over D; no mean is subtracted):
//   ms   = sum(x^2) / D,   rstd = 1 / sqrt(ms + eps)
//   xhat = x * rstd,       y = xhat * gamma
// Backward, per row (g = dy * gamma):
//   dnorm_norm_mean = mean(g * xhat)
//   dx     = rstd * (g - xhat * dnorm_norm_mean)
//   dgamma = sum over rows of dy * xhat   (per-chunk buffers, summed in order)
// That is LayerNorm's backward without the dnorm_mean term. Saved: x, rstd[R].
#pragma once

#include "layers/module.hpp"

namespace nl {

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, float eps = 1e-5f);

class RMSNorm : public Module {
 public:
  explicit RMSNorm(Shape normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x);  // x * rsqrt(mean(x*x) + eps) * weight, primitive ops
  std::string name() const override;

  Shape normalized_shape;
  float eps;
  Tensor weight;  // normalized_shape, init 1 (undefined without affine)
};

}  // namespace nl
