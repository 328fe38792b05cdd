// normlab norms: Weight Normalization (Salimans & Kingma 2016) on Linear and Conv2d, as
// PyTorch's torch.nn.utils.weight_norm(layer, dim=0).
//
// The weight is re-parametrized per output unit o (dim 0):
//   w[o] = g[o] * v[o] / ||v[o]||,    ||v[o]|| = sqrt(sum over all other dims of v[o]^2)
// Parameters: "weight_g" [out, 1] (Linear) or [out, 1, 1, 1] (Conv2d), "weight_v" (the
// weight's shape) and "bias". Built like PyTorch, g = ||w0|| and v = w0 from the layer's
// ordinary initialization, so the initial function is the plain layer's.
//
// Backward (what autograd through the composite computes; dw = the weight's gradient):
//   dg[o] = sum(dw[o] * v[o]) / ||v[o]||
//   dv[o] = (g[o] / ||v[o]||) * (dw[o] - dg[o] * v[o] / ||v[o]||)
// Implementation: the composite v * (g / sqrt(sum(v*v))) from primitive autograd ops,
// which is exact (no fused kernel: the weight is tiny next to the activations).
//
// Data-dependent initialization (paper, section 3; option data_init): on the first forward
// in training mode, with t = x . (v/||v||) (the pre-activation with g = 1 and no bias),
//   mu[o] = mean of t over every dim but the unit's,  sigma[o] = sqrt(biased var + 1e-10)
//   g[o] = 1 / sigma[o],    bias[o] = -mu[o] / sigma[o]
// so that batch's pre-activations have zero mean and unit variance per unit. Without a
// bias only g is set (the mean then stays).
#pragma once

#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

// w = g * v / ||v|| with the norm over every dim but 0 (differentiable composite).
Tensor weight_norm_weight(const Tensor& g, const Tensor& v);

class WeightNormLinear : public Module {
 public:
  WeightNormLinear(int64_t in_features, int64_t out_features, bool bias = true, bool data_init = false,
                   Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [..., in] -> [..., out]
  std::string name() const override;
  Tensor weight() const { return weight_norm_weight(weight_g, weight_v); }

  Tensor weight_g, weight_v, bias;  // [out, 1], [out, in], [out]
  int64_t in_features, out_features;
  bool data_init_pending;
};

class WeightNormConv2d : public Module {
 public:
  WeightNormConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {},
                   bool bias = true, bool data_init = false, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string name() const override;
  Tensor weight() const { return weight_norm_weight(weight_g, weight_v); }

  Tensor weight_g, weight_v, bias;  // [out, 1, 1, 1], [out, in/groups, k, k], [out]
  int64_t in_channels, out_channels, kernel_size;
  Conv2dOptions options;
  bool data_init_pending;
};

}  // namespace nl
