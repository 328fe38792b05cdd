// normlab layers: mean-only BatchNorm. The math is in mean_only_batch_norm.hpp; the fused
// op is BatchNorm's (bn_detail::fused_batch_norm) in mean-only mode.
#include "layers/norm/mean_only_batch_norm.hpp"

namespace nl {

MeanOnlyBatchNorm::MeanOnlyBatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchStatNorm(num_features, 1, options_.momentum, options_.track_running_stats, false),
      dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "MeanOnlyBatchNorm: dims must be 1 or 2, got ", dims);
  if (options.affine) bias = register_parameter("bias", Tensor::zeros({num_features}));
}

std::string MeanOnlyBatchNorm::name() const {
  return detail::concat("MeanOnlyBatchNorm", dims, "d(", num_features(), ")");
}

Tensor MeanOnlyBatchNorm::forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1];
  if (!is_training() && tracks_running_stats())
    return bn_detail::fused_batch_norm(x, C, Tensor(), bias, 0.0f, {0, N}, true, slot_mean(0), nullptr, nullptr,
                                       nullptr, "mean_only_batch_norm_eval");
  NL_CHECK(l[0] * l[2] > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
           shape_str(x.shape()));
  bn_detail::FusedStats st;
  Tensor y = bn_detail::fused_batch_norm(x, C, Tensor(), bias, 0.0f, {0, N}, true, nullptr, nullptr, nullptr, &st,
                                         "mean_only_batch_norm");
  if (is_training()) update_running_stats(0, st.mean.data(), nullptr);
  return y;
}

Tensor MeanOnlyBatchNorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const Shape cs = bn_detail::channel_shape(l[1], x.dim());
  std::vector<int64_t> red{0};
  for (int64_t d = 2; d < x.dim(); ++d) red.push_back(d);
  Tensor mean_t;
  if (!is_training() && tracks_running_stats()) {
    mean_t = running_mean.view(cs);
  } else {
    NL_CHECK(l[0] * l[2] > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
             shape_str(x.shape()));
    mean_t = mean(x, red, true);
    if (is_training()) update_running_stats(0, mean_t.to_vector().data(), nullptr);
  }
  Tensor y = x - mean_t;
  if (options.affine) y = y + bias.view(cs);
  return y;
}

}  // namespace nl
