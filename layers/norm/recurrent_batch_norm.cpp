// normlab layers: Recurrent BatchNorm. The math is in recurrent_batch_norm.hpp; the fused
// op is BatchNorm1d's (bn_detail::batch_norm, batch_norm_op.hpp) with per-time-step statistics.
#include "layers/norm/recurrent_batch_norm.hpp"

#include <algorithm>

namespace nl {

RecurrentBatchNorm::RecurrentBatchNorm(int64_t num_features, int64_t max_steps_, RecurrentBatchNormOptions options_)
    : BatchStatNorm(num_features, max_steps_, options_, true), max_steps(max_steps_), options(options_) {
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

Tensor RecurrentBatchNorm::forward(const Tensor& x_in, int64_t t) {
  const int64_t slot = check_step(*this, x_in, t);
  // Diagnostics see one time step per training step: t = 1, the first where the hidden-state
  // path's input W_h h_{t-1} is not all zeros (h_{-1} = 0).
  const bool observed = t == kObservedStep;
  const Tensor x = observed ? report_norm_input(x_in) : x_in;
  Tensor y = !is_training() && tracks_running_stats()
                 ? running_stats_forward(x, slot, weight, bias, {.eps = options.eps, .node_name = "recurrent_batch_norm_eval"})
                 : batch_stats_forward(x, slot, 1, weight, bias, {.eps = options.eps, .node_name = "recurrent_batch_norm"});
  return observed ? report_norm_output(y) : y;
}

Tensor RecurrentBatchNorm::reference_forward(const Tensor& x, int64_t t) {
  const int64_t slot = check_step(*this, x, t), N = x.size(0), C = num_features();
  Tensor y;
  if (!is_training() && tracks_running_stats()) {
    const Tensor mean_t = running_mean.view({max_steps, C}).select(0, slot).contiguous().view({1, C});
    const Tensor var_t = running_var.view({max_steps, C}).select(0, slot).contiguous().view({1, C});
    y = (x - mean_t) * rsqrt(var_t + options.eps);
  } else {
    const std::vector<int64_t> groups = stat_groups(N);
    check_stat_groups(x, groups, 1);
    y = bn_detail::reference_xhat(x, groups, 1, options.eps, [&](int64_t M, std::vector<float> m, std::vector<float> v) {
      if (!is_training()) return;
      for (auto& e : v) e = bn_detail::unbiased_var(e, M);
      update_running_stats(slot, m.data(), v.data());
    });
  }
  if (options.affine) y = y * weight.view({1, C}) + bias.view({1, C});
  return y;
}

}  // namespace nl
