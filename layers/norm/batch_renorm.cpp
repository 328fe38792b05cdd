// normlab layers: Batch Renormalization. The math is in batch_renorm.hpp; the fused op is
// BatchNorm's with per-channel constants r, d (bn_detail::batch_norm, batch_norm_op.hpp).
#include "layers/norm/batch_renorm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace nl {

BatchRenorm::BatchRenorm(int64_t num_features, int dims_, BatchRenormOptions options_)
    : BatchStatNorm(num_features, 1, options_, true), dims(dims_), options(options_) {
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

std::string BatchRenorm::name() const {
  return family_name("BatchRenorm", dims);
}

static float warmup_fraction(float step, int64_t warmup_steps) {
  if (warmup_steps == 0) return 1.0f;
  return std::min(1.0f, step / static_cast<float>(warmup_steps));
}
float BatchRenorm::r_max_at(float step) const {
  return 1.0f + (options.r_max - 1.0f) * warmup_fraction(step, options.warmup_steps);
}
float BatchRenorm::d_max_at(float step) const { return options.d_max * warmup_fraction(step, options.warmup_steps); }
float BatchRenorm::current_r_max() const { return r_max_at(num_batches_tracked.item()); }
float BatchRenorm::current_d_max() const { return d_max_at(num_batches_tracked.item()); }

int BatchRenorm::renorm_constants(float mean, float var, float running_mean, float running_var, float r_max,
                                  float d_max, float& r, float& d) const {
  const float sigma = std::sqrt(var + options.eps), sigma_run = std::sqrt(running_var + options.eps);
  const float r_raw = sigma / sigma_run, d_raw = (mean - running_mean) / sigma_run;
  r = std::clamp(r_raw, 1.0f / r_max, r_max);
  d = std::clamp(d_raw, -d_max, d_max);
  return (r != r_raw ? 1 : 0) | (d != d_raw ? 2 : 0);
}

Tensor BatchRenorm::forward(const Tensor& x_in) {
  const Tensor x = report_norm_input(x_in);
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  if (!is_training())
    return report_norm_output(
        running_stats_forward(x, 0, weight, bias, {.eps = options.eps, .node_name = "batch_renorm_eval"}));
  const std::vector<int64_t> groups = stat_groups(N);
  // Group k is normalized as its own training step would be: r, d from the running stats
  // after the updates of groups 0..k-1 (before its own), the clip from the count after them.
  // The fused op calls renorm for each channel's groups in order, so seen_mean/var[c] walk
  // channel c's running stats forward exactly as update_running_stats_per_group will.
  std::vector<float> seen_mean(slot_mean(0), slot_mean(0) + C), seen_var(slot_var(0), slot_var(0) + C);
  const float count = num_batches_tracked.item();
  const bool advance = !precise_stats_active();  // Precise BN leaves the running stats alone
  std::vector<uint8_t> clipped((groups.size() - 1) * C);  // per (group, channel); threads write their own
  auto renorm = [&](int64_t k, int64_t c, float mean, float var, float& r, float& d) {
    const float step = advance ? count + static_cast<float>(k) : count;
    clipped[k * C + c] =
        static_cast<uint8_t>(renorm_constants(mean, var, seen_mean[c], seen_var[c], r_max_at(step), d_max_at(step), r, d));
    if (!advance) return;
    const float f = bn_detail::momentum_factor(momentum(), step + 1.0f);
    const int64_t M = (groups[k + 1] - groups[k]) * S;
    seen_mean[c] = bn_detail::blend(seen_mean[c], mean, f);
    seen_var[c] = bn_detail::blend(seen_var[c], bn_detail::unbiased_var(var, M), f);
  };
  Tensor y = batch_stats_forward(x, 0, S, weight, bias, {.eps = options.eps, .renorm = renorm, .node_name = "batch_renorm"});
  clip_stats_ = {};
  for (uint8_t f : clipped) {
    clip_stats_.r += f & 1;
    clip_stats_.d += (f >> 1) & 1;
    clip_stats_.either += f != 0;
  }
  clip_stats_.pairs = static_cast<int64_t>(clipped.size());
  return report_norm_output(y);
}

Tensor BatchRenorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  const Shape cs = bn_detail::channel_shape(C, x.dim());
  const std::vector<int64_t> red = bn_detail::stat_dims(x.dim());
  Tensor y;
  if (!is_training()) {
    y = (x - running_mean.view(cs)) * rsqrt(running_var.view(cs) + options.eps);
  } else {  // per statistics group (0/1 mask over N), each updating the running stats in turn
    const std::vector<int64_t> groups = stat_groups(N);
    check_stat_groups(x, groups, S);
    for (size_t k = 0; k + 1 < groups.size(); ++k) {
      const int64_t M = (groups[k + 1] - groups[k]) * S;
      const Tensor mask = bn_detail::group_mask(N, x.dim(), groups[k], groups[k + 1]);
      const Tensor mean_k = sum(x * mask, red, true) * (1.0f / static_cast<float>(M));
      const Tensor xmu = (x - mean_k) * mask;
      const Tensor var_k = sum(xmu * xmu, red, true) * (1.0f / static_cast<float>(M));
      // r and d: computed outside autograd (stop-gradient), from the running stats so far
      std::vector<float> r(C), d(C), m = mean_k.to_vector(), v = var_k.to_vector(), vu(C);
      const float r_max = current_r_max(), d_max = current_d_max();
      for (int64_t c = 0; c < C; ++c) {
        renorm_constants(m[c], v[c], running_mean.data()[c], running_var.data()[c], r_max, d_max, r[c], d[c]);
        vu[c] = bn_detail::unbiased_var(v[c], M);
      }
      const Tensor yk = (xmu * rsqrt(var_k + options.eps) * Tensor::from_vector(cs, r) + Tensor::from_vector(cs, d)) * mask;
      y = y.defined() ? y + yk : yk;
      update_running_stats(0, m.data(), vu.data());
    }
  }
  if (options.affine) y = y * weight.view(cs) + bias.view(cs);
  return y;
}

}  // namespace nl
