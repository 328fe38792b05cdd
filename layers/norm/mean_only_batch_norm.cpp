// normlab layers: mean-only BatchNorm. The math is in mean_only_batch_norm.hpp; the fused
// op is BatchNorm's (bn_detail::batch_norm, batch_norm_op.hpp) in mean-only mode.
#include "layers/norm/mean_only_batch_norm.hpp"

namespace nl {

MeanOnlyBatchNorm::MeanOnlyBatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchStatNorm(num_features, 1, options_, false), dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "MeanOnlyBatchNorm: dims must be 1 or 2, got ", dims);
  if (options.affine) bias = register_parameter("bias", Tensor::zeros({num_features}));
}

std::string MeanOnlyBatchNorm::name() const {
  return family_name("MeanOnlyBatchNorm", dims);
}

Tensor MeanOnlyBatchNorm::forward(const Tensor& x_in) {
  const Tensor x = report_norm_input(x_in);
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  if (!is_training() && tracks_running_stats())
    return report_norm_output(
        running_stats_forward(x, 0, Tensor(), bias, {.mean_only = true, .node_name = "mean_only_batch_norm_eval"}));
  return report_norm_output(
      batch_stats_forward(x, 0, l[2], Tensor(), bias, {.mean_only = true, .node_name = "mean_only_batch_norm"}));
}

Tensor MeanOnlyBatchNorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], S = l[2];
  const Shape cs = bn_detail::channel_shape(l[1], x.dim());
  const std::vector<int64_t> red = bn_detail::stat_dims(x.dim());
  Tensor y;
  if (!is_training() && tracks_running_stats()) {
    y = x - running_mean.view(cs);
  } else {  // per statistics group, selected with a 0/1 mask over N (as BatchNorm's reference)
    const std::vector<int64_t> groups = stat_groups(N);
    check_stat_groups(x, groups, S);
    for (size_t k = 0; k + 1 < groups.size(); ++k) {
      const Tensor mask = bn_detail::group_mask(N, x.dim(), groups[k], groups[k + 1]);
      const float M = static_cast<float>((groups[k + 1] - groups[k]) * S);
      const Tensor mean_k = sum(x * mask, red, true) * (1.0f / M);
      const Tensor yk = (x - mean_k) * mask;
      y = y.defined() ? y + yk : yk;
      if (is_training()) update_running_stats(0, mean_k.to_vector().data(), nullptr);
    }
  }
  if (options.affine) y = y + bias.view(cs);
  return y;
}

}  // namespace nl
