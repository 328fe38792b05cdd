// normlab norms: Instance Normalization (Ulyanov et al. 2016), PyTorch's nn.InstanceNorm1d/2d.
//
// x: [N, C, L] (1d) or [N, C, H, W] (2d). Every (sample n, channel c) plane is normalized
// on its own: this is GroupNorm with G = C, and the fused kernel *is* group_norm's
// (parallel over the N*C planes). See group_norm.hpp for the forward/backward formulas
// with K = 1, M = L (or H*W):
//   mean = sum_l x / M,  var = sum_l (x - mean)^2 / M,  rstd = 1/sqrt(var + eps)
//   y = (x - mean) * rstd * gamma[c] + beta[c]
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma[c]
//
// Defaults as PyTorch: affine = false, track_running_stats = false, eps 1e-5, momentum 0.1.
// With track_running_stats, training mode updates (PyTorch's convention, like BatchNorm,
// averaged over the batch's instances; momentum < 0 means a cumulative average):
//   running_mean[c] = (1 - m) * running_mean[c] + m * mean_n(mean[n,c])
//   running_var[c]  = (1 - m) * running_var[c]  + m * mean_n(var[n,c] * M / (M - 1))  (unbiased)
// and eval mode normalizes with them instead (a per-channel affine: y = x * a[c] + b[c],
//   a = gamma * rsqrt(running_var + eps), b = beta - running_mean * a; dx = a * dy,
//   dgamma = sum dy * (x - running_mean) * rsqrt(running_var + eps), dbeta = sum dy).
// Without track_running_stats, eval mode also uses the instance statistics (as PyTorch).
// A plane of one element (M = 1) has var 0, so y = beta; the running var then skips M-1 = 0
// by using the biased value (PyTorch would produce a division by zero warning).
#pragma once

#include "layers/module.hpp"

namespace nl {

class InstanceNorm : public Module {
 public:
  // spatial_dims: 1 (InstanceNorm1d, input [N, C, L]) or 2 (InstanceNorm2d, [N, C, H, W]).
  InstanceNorm(int spatial_dims, int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = false,
               bool track_running_stats = false);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one pass and node (group_norm's fused ReLU) in training mode; two ops
  // in eval mode with running statistics and under a diagnostics observer.
  Tensor forward_relu(const Tensor& x);
  Tensor reference_forward(const Tensor& x);  // from primitive autograd ops (same running-stat update)
  std::string name() const override;

  int spatial_dims;
  int64_t num_features;
  float eps, momentum;
  bool affine, track_running_stats;
  Tensor weight, bias;                 // [C] when affine (init 1, 0)
  Tensor running_mean, running_var;    // [C] buffers when track_running_stats (init 0, 1)
  Tensor num_batches_tracked;          // [] buffer when tracking: the count of updates (saved)

 private:
  Tensor normalize(const Tensor& x, bool fused_relu);
  void check_input(const Tensor& x) const;
  void update_running_stats(const Tensor& mean_nc, const Tensor& var_nc, int64_t M);
};

class InstanceNorm1d : public InstanceNorm {
 public:
  explicit InstanceNorm1d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = false,
                          bool track_running_stats = false)
      : InstanceNorm(1, num_features, eps, momentum, affine, track_running_stats) {}
};

class InstanceNorm2d : public InstanceNorm {
 public:
  explicit InstanceNorm2d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f, bool affine = false,
                          bool track_running_stats = false)
      : InstanceNorm(2, num_features, eps, momentum, affine, track_running_stats) {}
};

}  // namespace nl
