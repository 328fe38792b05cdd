// normlab layers: Linear and Conv2d. See linear.hpp.
#include "layers/linear.hpp"

#include <cmath>

#include <fmt/format.h>

namespace nl {

static void init_weight_and_bias(Tensor& weight, Tensor& bias, Generator& gen) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in(weight)));
  kaiming_uniform_(weight, std::sqrt(5.0f), gen);  // == U(-bound, bound)
  if (bias.defined()) uniform_(bias, -bound, bound, gen);
}

Linear::Linear(int64_t in, int64_t out, bool has_bias, Generator& gen) : in_features(in), out_features(out) {
  NL_CHECK(in > 0 && out > 0, "Linear: features must be positive, got in=", in, " out=", out);
  weight = Tensor::empty({out, in});
  if (has_bias) bias = Tensor::empty({out});
  init_weight_and_bias(weight, bias, gen);
  register_parameter("weight", weight);
  if (has_bias) register_parameter("bias", bias);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }
std::string Linear::name() const { return fmt::format("Linear({}, {})", in_features, out_features); }

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, Conv2dOptions opt, bool has_bias, Generator& gen)
    : in_channels(in), out_channels(out), kernel_size(k), options(opt) {
  NL_CHECK(in > 0 && out > 0 && k > 0, "Conv2d: channels and kernel size must be positive");
  NL_CHECK(opt.groups >= 1 && in % opt.groups == 0 && out % opt.groups == 0, "Conv2d: groups=", opt.groups,
           " must divide in_channels=", in, " and out_channels=", out);
  weight = Tensor::empty({out, in / opt.groups, k, k});
  if (has_bias) bias = Tensor::empty({out});
  init_weight_and_bias(weight, bias, gen);
  register_parameter("weight", weight);
  if (has_bias) register_parameter("bias", bias);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, options); }
std::string Conv2d::name() const {
  return fmt::format("Conv2d({}, {}, k={}, s={}, p={})", in_channels, out_channels, kernel_size, options.stride_h,
                     options.pad_h);
}

}  // namespace nl
