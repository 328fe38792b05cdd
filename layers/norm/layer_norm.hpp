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
//
// ReLU fused (z = max(0, y), what make_norm_act builds for ln followed by relu, with affine):
// the output is z, and the backward above runs with dy masked where y <= 0, y recomputed from x
// by the forward's expression (the same bits as relu(layer_norm(x)) in two ops).
#pragma once

#include "layers/module.hpp"

namespace nl {

// Fused, one autograd node. weight/bias may be undefined (no affine). relu: relu(layer_norm(x))
// in the same pass and node (weight and bias required).
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  float eps = 1e-5f, bool relu = false);

class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, float eps = 1e-5f, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one pass and node (above, "ReLU fused"); two ops under a diagnostics
  // observer (it reads the output before the ReLU) and without affine.
  Tensor forward_relu(const Tensor& x);
  // The same function from primitive autograd ops (mean, sub, mul, rsqrt, ...): slow, obviously right.
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;

  Shape normalized_shape;
  float eps;
  Tensor weight, bias;  // normalized_shape each (undefined without affine); init 1 and 0

 private:
  Tensor normalize(const Tensor& x, bool fused_relu);
};

}  // namespace nl
