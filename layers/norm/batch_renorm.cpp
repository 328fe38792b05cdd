// normlab layers: Batch Renormalization. The math is in batch_renorm.hpp; the fused op is
// BatchNorm's with per-channel constants r, d (bn_detail::fused_batch_norm).
#include "layers/norm/batch_renorm.hpp"

#include <algorithm>
#include <cmath>

namespace nl {

BatchRenorm::BatchRenorm(int64_t num_features, int dims_, BatchRenormOptions options_)
    : BatchStatNorm(num_features, 1, options_.momentum, options_.track_running_stats, true),
      dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "BatchRenorm: dims must be 1 or 2, got ", dims);
  NL_CHECK(options.track_running_stats, name(), ": needs track_running_stats (r and d use the running stats)");
  NL_CHECK(options.eps > 0.0f, name(), ": eps must be > 0, got ", options.eps);
  NL_CHECK(options.r_max >= 1.0f, name(), ": r_max must be >= 1, got ", options.r_max);
  NL_CHECK(options.d_max >= 0.0f, name(), ": d_max must be >= 0, got ", options.d_max);
  NL_CHECK(options.warmup_steps >= 0, name(), ": warmup_steps must be >= 0, got ", options.warmup_steps);
  if (options.affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
}

std::string BatchRenorm::name() const { return detail::concat("BatchRenorm", dims, "d(", num_features(), ")"); }

static float warmup_fraction(float step, int64_t warmup_steps) {
  if (warmup_steps == 0) return 1.0f;
  return std::min(1.0f, step / static_cast<float>(warmup_steps));
}
float BatchRenorm::current_r_max() const {
  return 1.0f + (options.r_max - 1.0f) * warmup_fraction(num_batches_tracked.item(), options.warmup_steps);
}
float BatchRenorm::current_d_max() const {
  return options.d_max * warmup_fraction(num_batches_tracked.item(), options.warmup_steps);
}

Tensor BatchRenorm::forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], M = l[0] * l[2];
  if (!is_training())
    return bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, {0, N}, false, slot_mean(0), slot_var(0),
                                       nullptr, nullptr, "batch_renorm_eval");
  NL_CHECK(M > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
           shape_str(x.shape()));
  const float r_max = current_r_max(), d_max = current_d_max(), eps = options.eps;
  const float* rm = slot_mean(0);
  const float* rv = slot_var(0);
  // r, d from the running stats *before* this step's update; constants for backward.
  auto renorm = [=](int64_t c, float mean, float var, float& r, float& d) {
    const float sigma = std::sqrt(var + eps), sigma_run = std::sqrt(rv[c] + eps);
    r = std::clamp(sigma / sigma_run, 1.0f / r_max, r_max);
    d = std::clamp((mean - rm[c]) / sigma_run, -d_max, d_max);
  };
  bn_detail::FusedStats st;
  Tensor y = bn_detail::fused_batch_norm(x, C, weight, bias, eps, {0, N}, false, nullptr, nullptr, renorm, &st,
                                         "batch_renorm");
  std::vector<float> var_unbiased(C);
  for (int64_t c = 0; c < C; ++c) var_unbiased[c] = static_cast<float>(st.var[c] * (double(M) / double(M - 1)));
  update_running_stats(0, st.mean.data(), var_unbiased.data());
  return y;
}

Tensor BatchRenorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t C = l[1], M = l[0] * l[2];
  const Shape cs = bn_detail::channel_shape(C, x.dim());
  std::vector<int64_t> red{0};
  for (int64_t d = 2; d < x.dim(); ++d) red.push_back(d);
  Tensor y;
  if (!is_training()) {
    y = (x - running_mean.view(cs)) * rsqrt(running_var.view(cs) + options.eps);
  } else {
    NL_CHECK(M > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
             shape_str(x.shape()));
    const Tensor mean_t = mean(x, red, true);
    const Tensor xmu = x - mean_t;
    const Tensor var_t = mean(xmu * xmu, red, true);
    // r and d: computed outside autograd (stop-gradient), from the old running stats
    std::vector<float> r(C), d(C), m = mean_t.to_vector(), v = var_t.to_vector(), vu(C);
    const float r_max = current_r_max(), d_max = current_d_max();
    for (int64_t c = 0; c < C; ++c) {
      const float sigma_run = std::sqrt(running_var.data()[c] + options.eps);
      r[c] = std::clamp(std::sqrt(v[c] + options.eps) / sigma_run, 1.0f / r_max, r_max);
      d[c] = std::clamp((m[c] - running_mean.data()[c]) / sigma_run, -d_max, d_max);
      vu[c] = static_cast<float>(v[c] * (double(M) / double(M - 1)));
    }
    y = xmu * rsqrt(var_t + options.eps) * Tensor::from_vector(cs, r) + Tensor::from_vector(cs, d);
    update_running_stats(0, m.data(), vu.data());
  }
  if (options.affine) y = y * weight.view(cs) + bias.view(cs);
  return y;
}

}  // namespace nl
