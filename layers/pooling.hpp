// normlab layers: pooling and flattening modules for NCHW feature maps. No parameters:
// each calls the op of the same name in core/ops.hpp, which owns forward and backward.
#pragma once

#include "layers/module.hpp"

namespace nl {

// Max over kernel x kernel windows; stride 0 means stride = kernel (PyTorch's default).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;  // [N, C, H, W] -> [N, C, H', W']
  std::string name() const override;
  int64_t kernel, stride, padding;
};

// Mean over kernel x kernel windows (padding counts as zeros, count_include_pad=True).
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;
  std::string name() const override;
  int64_t kernel, stride, padding;
};

// Mean over all of H x W: [N, C, H, W] -> [N, C] (ResNet's last pooling).
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string name() const override { return "GlobalAvgPool2d"; }
};

// Merges dims start_dim..end_dim into one; the default turns [N, C, H, W] into [N, C*H*W].
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim, end_dim); }
  std::string name() const override { return "Flatten"; }
  int64_t start_dim, end_dim;
};

}  // namespace nl
