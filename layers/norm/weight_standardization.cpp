// normlab norms: weight-standardized Conv2d. The math is in weight_standardization.hpp.
#include "layers/norm/weight_standardization.hpp"

#include "layers/linear.hpp"

namespace nl {

Tensor standardize_weight(const Tensor& w, float eps) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < w.dim(); ++d) dims.push_back(d);
  Tensor d = w - mean(w, dims, true);
  return d * rsqrt(mean(d * d, dims, true) + eps);
}

WSConv2d::WSConv2d(int64_t in, int64_t out, int64_t k, Conv2dOptions opt, bool has_bias, float eps_, Generator& gen)
    : in_channels(in), out_channels(out), kernel_size(k), options(opt), eps(eps_) {
  Conv2d plain(in, out, k, opt, has_bias, gen);
  weight = register_parameter("weight", plain.weight.detach().clone());
  if (has_bias) bias = register_parameter("bias", plain.bias.detach().clone());
}

Tensor WSConv2d::forward(const Tensor& x) {
  NL_CHECK(x.dim() == 4 && x.size(1) == in_channels, name(), ": expected input [N, ", in_channels,
           ", H, W], got shape ", x.shape());
  return conv2d(x, standardize_weight(weight, eps), bias, options);
}

std::string WSConv2d::name() const {
  return "WSConv2d(" + std::to_string(in_channels) + ", " + std::to_string(out_channels) +
         ", k=" + std::to_string(kernel_size) + ")";
}

}  // namespace nl
