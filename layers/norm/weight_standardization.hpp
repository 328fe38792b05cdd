// normlab norms: Weight Standardization (Qiao et al. 2019) on Conv2d, meant to be paired
// with GroupNorm (the factory's "ws" = WS conv + GN).
//
// Per output channel o, over its fan-in I = Cin/groups * k * k weights:
//   mean[o] = sum(w[o]) / I,   var[o] = sum((w[o] - mean[o])^2) / I      (biased)
//   w_hat[o] = (w[o] - mean[o]) / sqrt(var[o] + eps),   eps = 1e-5
//   y = conv2d(x, w_hat, bias)
// This is the paper's Eq. (5) (biased variance, eps under the square root). Its released
// code (joe-siyuan-qiao/WeightStandardization) differs slightly: it divides by the
// *unbiased* std plus 1e-5 (w - mean) / (std(w) + 1e-5). We take eps = 1e-5 from that
// code and the formula from the paper; the fixture test builds exactly this formula.
// Backward is autograd through the composite (it is LayerNorm's backward per row of w):
//   dw = rstd * (dw_hat - mean(dw_hat) - w_hat * mean(dw_hat * w_hat))
// No fused kernel: the weight is small and the composite is exact.
#pragma once

#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

// w_hat from w, per dim-0 slice (differentiable composite).
Tensor standardize_weight(const Tensor& w, float eps = 1e-5f);

class WSConv2d : public Module {
 public:
  WSConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {},
           bool bias = true, float eps = 1e-5f, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  std::string name() const override;

  Tensor weight, bias;  // raw weight [out, in/groups, k, k] (standardized in forward), [out]
  int64_t in_channels, out_channels, kernel_size;
  Conv2dOptions options;
  float eps;
};

}  // namespace nl
