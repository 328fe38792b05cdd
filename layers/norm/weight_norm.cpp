// normlab norms: weight-normalized Linear and Conv2d. The math is in weight_norm.hpp.
#include "layers/norm/weight_norm.hpp"

#include <cmath>

#include "layers/linear.hpp"

namespace nl {

static std::vector<int64_t> dims_except_0(const Tensor& t) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < t.dim(); ++d) dims.push_back(d);
  return dims;
}

Tensor weight_norm_weight(const Tensor& g, const Tensor& v) {
  return v * (g / sqrt(sum(v * v, dims_except_0(v), true)));
}

// g = ||w0|| per unit, v = w0 (PyTorch's weight_norm initial values).
static void init_from_weight(const Tensor& w0, Tensor& g, Tensor& v) {
  NoGradGuard no_grad;
  v = w0.clone();
  g = sqrt(sum(w0 * w0, dims_except_0(w0), true)).contiguous().clone();
}

// The paper's data-dependent init from pre-activations t (bias-free, g = 1), unit dim `unit_dim`.
static void data_init(const Tensor& t, int64_t unit_dim, Tensor& g, Tensor& bias) {
  NoGradGuard no_grad;
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != unit_dim) dims.push_back(d);
  Tensor mu = mean(t, dims, false);
  Tensor d = t - mu.reshape([&] { Shape s(t.dim(), 1); s[unit_dim] = mu.numel(); return s; }());
  Tensor sigma = sqrt(mean(d * d, dims, false) + 1e-10f).contiguous();
  const int64_t out = mu.numel();
  for (int64_t o = 0; o < out; ++o) {
    g.data()[o] = 1.0f / sigma.data()[o];
    if (bias.defined()) bias.data()[o] = -mu.contiguous().data()[o] / sigma.data()[o];
  }
}

WeightNormLinear::WeightNormLinear(int64_t in, int64_t out, bool has_bias, bool data_init_, Generator& gen)
    : in_features(in), out_features(out), data_init_pending(data_init_) {
  Linear plain(in, out, has_bias, gen);
  if (has_bias) bias = register_parameter("bias", plain.bias.detach().clone());
  init_from_weight(plain.weight.detach(), weight_g, weight_v);
  weight_g = register_parameter("weight_g", weight_g);
  weight_v = register_parameter("weight_v", weight_v);
}

Tensor WeightNormLinear::forward(const Tensor& x) {
  NL_CHECK(x.dim() >= 1 && x.size(-1) == in_features, name(), ": expected input [..., ", in_features,
           "], got shape ", x.shape());
  if (data_init_pending && is_training()) {
    Tensor t;
    {
      NoGradGuard no_grad;
      t = linear(x.reshape({-1, in_features}), weight_norm_weight(Tensor::ones({out_features, 1}), weight_v));
    }
    data_init(t, 1, weight_g, bias);
    data_init_pending = false;
  }
  return linear(x, weight(), bias);
}

std::string WeightNormLinear::name() const {
  return "WeightNormLinear(" + std::to_string(in_features) + ", " + std::to_string(out_features) + ")";
}

WeightNormConv2d::WeightNormConv2d(int64_t in, int64_t out, int64_t k, Conv2dOptions opt, bool has_bias,
                                   bool data_init_, Generator& gen)
    : in_channels(in), out_channels(out), kernel_size(k), options(opt), data_init_pending(data_init_) {
  Conv2d plain(in, out, k, opt, has_bias, gen);
  if (has_bias) bias = register_parameter("bias", plain.bias.detach().clone());
  init_from_weight(plain.weight.detach(), weight_g, weight_v);
  weight_g = register_parameter("weight_g", weight_g);
  weight_v = register_parameter("weight_v", weight_v);
}

Tensor WeightNormConv2d::forward(const Tensor& x) {
  NL_CHECK(x.dim() == 4 && x.size(1) == in_channels, name(), ": expected input [N, ", in_channels,
           ", H, W], got shape ", x.shape());
  if (data_init_pending && is_training()) {
    Tensor t;
    {
      NoGradGuard no_grad;
      t = conv2d(x, weight_norm_weight(Tensor::ones({out_channels, 1, 1, 1}), weight_v), Tensor(), options);
    }
    data_init(t, 1, weight_g, bias);
    data_init_pending = false;
  }
  return conv2d(x, weight(), bias, options);
}

std::string WeightNormConv2d::name() const {
  return "WeightNormConv2d(" + std::to_string(in_channels) + ", " + std::to_string(out_channels) +
         ", k=" + std::to_string(kernel_size) + ")";
}

}  // namespace nl
