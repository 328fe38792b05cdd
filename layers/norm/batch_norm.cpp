// normlab layers: BatchNorm. The math is in batch_norm.hpp, the fused op in batch_norm_op.cpp.
#include "layers/norm/batch_norm.hpp"

#include "core/ops.hpp"

namespace nl {

BatchNorm::BatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchStatNorm(num_features, 1, options_, true), dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "BatchNorm: dims must be 1 (BatchNorm1d) or 2 (BatchNorm2d), got ", dims);
  NL_CHECK(options.eps > 0.0f, name(), ": eps must be > 0, got ", options.eps);
  if (options.affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
}

std::string BatchNorm::name() const {
  return family_name("BatchNorm", dims);
}

Tensor BatchNorm::forward(const Tensor& x) { return normalize(x, false); }

Tensor BatchNorm::forward_relu(const Tensor& x) {
  if (has_norm_observer()) return relu(normalize(x, false));
  return normalize(x, true);
}

Tensor BatchNorm::normalize(const Tensor& x_in, bool fused_relu) {
  const Tensor x = report_norm_input(x_in);
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  if (!is_training() && tracks_running_stats())
    return report_norm_output(running_stats_forward(
        x, 0, weight, bias,
        {.eps = options.eps, .relu = fused_relu, .node_name = fused_relu ? "batch_norm_relu_eval" : "batch_norm_eval"}));
  return report_norm_output(batch_stats_forward(
      x, 0, l[2], weight, bias,
      {.eps = options.eps, .relu = fused_relu, .node_name = fused_relu ? "batch_norm_relu" : "batch_norm"}));
}

Tensor BatchNorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  const Shape cs = bn_detail::channel_shape(C, x.dim());
  Tensor y;
  if (!is_training() && tracks_running_stats()) {
    y = (x - running_mean.view(cs)) * rsqrt(running_var.view(cs) + options.eps);
  } else {
    const std::vector<int64_t> groups = stat_groups(N);
    check_stat_groups(x, groups, S);
    y = bn_detail::reference_xhat(x, groups, S, options.eps, [&](int64_t M, std::vector<float> m, std::vector<float> v) {
      if (!is_training()) return;
      for (auto& e : v) e = bn_detail::unbiased_var(e, M);
      update_running_stats(0, m.data(), v.data());
    });
  }
  if (options.affine) y = y * weight.view(cs) + bias.view(cs);
  return y;
}

}  // namespace nl
