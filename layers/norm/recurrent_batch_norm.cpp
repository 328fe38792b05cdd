// normlab layers: Recurrent BatchNorm. The math is in recurrent_batch_norm.hpp; the fused
// op is BatchNorm1d's (bn_detail::fused_batch_norm) with per-time-step statistics.
#include "layers/norm/recurrent_batch_norm.hpp"

#include <algorithm>

namespace nl {

RecurrentBatchNorm::RecurrentBatchNorm(int64_t num_features, int64_t max_steps_, RecurrentBatchNormOptions options_)
    : BatchStatNorm(num_features, max_steps_, options_.momentum, options_.track_running_stats, true),
      max_steps(max_steps_), options(options_) {
  NL_CHECK(options.eps > 0.0f, name(), ": eps must be > 0, got ", options.eps);
  if (options.affine) {
    weight = register_parameter("weight", Tensor::full({num_features}, options.gamma_init));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
}

std::string RecurrentBatchNorm::name() const {
  return detail::concat("RecurrentBatchNorm(", num_features(), ", steps=", max_steps, ")");
}

Tensor RecurrentBatchNorm::forward(const Tensor&) {
  throw Error(name() + ": call forward(x, t) with the time step t");
}

static int64_t check_step(const RecurrentBatchNorm& m, const Tensor& x, int64_t t) {
  NL_CHECK(x.dim() == 2 && x.size(1) == m.num_features(), m.name(), ": expected input [N, ", m.num_features(),
           "], got ", shape_str(x.shape()));
  NL_CHECK(t >= 0, m.name(), ": time step must be >= 0, got ", t);
  return std::min(t, m.max_steps - 1);
}

Tensor RecurrentBatchNorm::forward(const Tensor& x, int64_t t) {
  const int64_t slot = check_step(*this, x, t), N = x.size(0), C = num_features();
  if (!is_training() && tracks_running_stats())
    return bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, {0, N}, false, slot_mean(slot),
                                       slot_var(slot), nullptr, nullptr, "recurrent_batch_norm_eval");
  NL_CHECK(N > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
           shape_str(x.shape()));
  bn_detail::FusedStats st;
  Tensor y = bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, {0, N}, false, nullptr, nullptr, nullptr,
                                         &st, "recurrent_batch_norm");
  if (is_training()) {
    std::vector<float> vu(C);
    for (int64_t c = 0; c < C; ++c) vu[c] = static_cast<float>(st.var[c] * (double(N) / double(N - 1)));
    update_running_stats(slot, st.mean.data(), vu.data());
  }
  return y;
}

Tensor RecurrentBatchNorm::reference_forward(const Tensor& x, int64_t t) {
  const int64_t slot = check_step(*this, x, t), N = x.size(0), C = num_features();
  Tensor mean_t, var_t;
  if (!is_training() && tracks_running_stats()) {
    mean_t = running_mean.view({max_steps, C}).select(0, slot).view({1, C});
    var_t = running_var.view({max_steps, C}).select(0, slot).contiguous().view({1, C});
    mean_t = mean_t.contiguous();
  } else {
    NL_CHECK(N > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
             shape_str(x.shape()));
    mean_t = mean(x, {0}, true);
    const Tensor xmu = x - mean_t;
    var_t = mean(xmu * xmu, {0}, true);
    if (is_training()) {
      std::vector<float> m = mean_t.to_vector(), v = var_t.to_vector();
      for (auto& e : v) e = e * float(N) / float(N - 1);
      update_running_stats(slot, m.data(), v.data());
    }
  }
  Tensor y = (x - mean_t) * rsqrt(var_t + options.eps);
  if (options.affine) y = y * weight.view({1, C}) + bias.view({1, C});
  return y;
}

}  // namespace nl
