// normlab layers: mean-only BatchNorm. The math is in mean_only_batch_norm.hpp; the fused
// op is BatchNorm's (bn_detail::fused_batch_norm) in mean-only mode.
#include "layers/norm/mean_only_batch_norm.hpp"

namespace nl {

MeanOnlyBatchNorm::MeanOnlyBatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchStatNorm(num_features, 1, options_, false), dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "MeanOnlyBatchNorm: dims must be 1 or 2, got ", dims);
  if (options.affine) bias = register_parameter("bias", Tensor::zeros({num_features}));
}

std::string MeanOnlyBatchNorm::name() const {
  return detail::concat("MeanOnlyBatchNorm", dims, "d(", num_features(),
                        stat_batch() > 0 ? detail::concat(", stat_batch=", stat_batch()) : std::string(), ")");
}

Tensor MeanOnlyBatchNorm::forward(const Tensor& x) {
  report_norm_input(x);
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  if (!is_training() && tracks_running_stats())
    return report_norm_output(bn_detail::fused_batch_norm(x, C, Tensor(), bias, 0.0f, {0, N}, true, slot_mean(0),
                                                          nullptr, nullptr, nullptr, "mean_only_batch_norm_eval"));
  const std::vector<int64_t> groups = stat_groups(N);
  check_stat_groups(x, groups, S);
  bn_detail::FusedStats st;
  Tensor y = bn_detail::fused_batch_norm(x, C, Tensor(), bias, 0.0f, groups, true, nullptr, nullptr, nullptr, &st,
                                         "mean_only_batch_norm");
  if (is_training()) update_running_stats_per_group(0, groups, S, st.mean.data(), nullptr);
  return report_norm_output(y);
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
