// normlab layers: Linear and Conv2d, the weight layers every model and norm builds on.
// Initialisation follows PyTorch: kaiming_uniform(a = sqrt(5)) for the weight, which is
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias.
#pragma once

#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [..., in] -> [..., out]
  std::string name() const override;
  Tensor weight, bias;  // [out, in], [out] (bias undefined when disabled)
  int64_t in_features, out_features;
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {},
         bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [N, Cin, H, W] -> [N, Cout, H', W']
  std::string name() const override;
  Tensor weight, bias;  // [Cout, Cin/groups, k, k], [Cout]
  int64_t in_channels, out_channels, kernel_size;
  Conv2dOptions options;
};

}  // namespace nl
