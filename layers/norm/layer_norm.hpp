// normlab norms: Layer Normalization (Ba, Kiros & Hinton 2016), PyTorch's nn.LayerNorm.
//
// x is viewed as [R, D]: D = prod(normalized_shape) (the trailing dims: [D] for tokens,
// [C, H, W] for images), R = everything before. Each row is normalized on its own, so the
// result does not depend on the batch (why LN is indifferent to batch size 2).
//
// Forward, per row r (reduced over the D elements of the row; biased variance):
//   mean = sum(x) / D,   var = sum((x - mean)^2) / D,   rstd = 1 / sqrt(var + eps)
//   xhat = (x - mean) * rstd
//   y    = xhat * gamma + beta                          (gamma, beta: normalized_shape)
//
// Backward, per row (g = dy * gamma; two reductions per row, xhat recomputed from x):
//   dnorm_mean      = mean(g)
//   dnorm_norm_mean = mean(g * xhat)
//   dx     = rstd * (g - dnorm_mean - xhat * dnorm_norm_mean)
//   dgamma = sum over rows of dy * xhat,   dbeta = sum over rows of dy
// dgamma/dbeta are summed into one buffer per thread chunk, then the buffers are added in
// chunk order (deterministic). Saved for backward: x, mean[R], rstd[R].
#pragma once

#include "layers/module.hpp"

namespace nl {

// Fused, one autograd node. weight/bias may be undefined (no affine).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  float eps = 1e-5f);

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  // The same function from primitive autograd ops (mean, sub, mul, rsqrt, ...): slow, obviously right.
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;

  Shape normalized_shape;
  float eps;
  Tensor weight, bias;  // normalized_shape each (undefined without affine); init 1 and 0
};

}  // namespace nl
