// normlab layers: BatchStatNorm and the BatchNorm family's shared helpers (see
// batch_stat_norm.hpp).
#include "layers/norm/batch_stat_norm.hpp"

#include <cmath>

#include "core/ops.hpp"

namespace nl {

BatchStatNorm::BatchStatNorm(int64_t num_features, int64_t slots, const BatchNormOptions& o, bool has_running_var)
    : num_features_(num_features), slots_(slots), stat_batch_(o.stat_batch), momentum_(o.momentum),
      track_(o.track_running_stats), has_var_(has_running_var) {
  NL_CHECK(num_features >= 1, "BatchNorm family: num_features must be >= 1, got ", num_features);
  NL_CHECK(slots >= 1, "BatchNorm family: need at least one statistics slot, got ", slots);
  NL_CHECK(std::isfinite(momentum_) && momentum_ <= 1.0f, "BatchNorm family: momentum must be <= 1 (negative = ",
           "cumulative average), got ", momentum_);
  NL_CHECK(stat_batch_ == 0 || stat_batch_ >= 2, "BatchNorm family: stat_batch must be 0 (the whole batch) or >= 2, ",
           "got ", stat_batch_);
  if (!track_) return;
  const Shape stat_shape = slots == 1 ? Shape{num_features} : Shape{slots, num_features};
  running_mean = register_buffer("running_mean", Tensor::zeros(stat_shape));
  if (has_var_) running_var = register_buffer("running_var", Tensor::ones(stat_shape));
  num_batches_tracked =
      register_buffer("num_batches_tracked", slots == 1 ? Tensor::scalar(0.0f) : Tensor::zeros({slots}));
}

std::vector<int64_t> BatchStatNorm::stat_groups(int64_t N) const {
  std::vector<int64_t> b{0};
  if (stat_batch_ > 0)
    for (int64_t s = stat_batch_; s < N; s += stat_batch_) b.push_back(s);
  if (b.size() > 1 && N - b.back() == 1) b.pop_back();  // a leftover of one sample joins the group before it
  b.push_back(N);
  return b;
}

void BatchStatNorm::check_stat_groups(const Tensor& x, const std::vector<int64_t>& groups, int64_t S) const {
  for (size_t k = 0; k + 1 < groups.size(); ++k)
    if ((groups[k + 1] - groups[k]) * S <= 1)
      bn_detail::check_more_than_one_value(
          (groups[k + 1] - groups[k]) * S, name(), x,
          stat_batch_ > 0 ? detail::concat(" (statistics groups of ", stat_batch_, " samples)") : std::string());
}

void BatchStatNorm::update_running_stats_per_group(int64_t slot, const std::vector<int64_t>& groups, int64_t S, const float* mean,
                                                   const float* var_biased) {
  const int64_t C = num_features_;
  std::vector<float> var_unbiased(C);
  for (size_t k = 0; k + 1 < groups.size(); ++k) {
    const int64_t M = (groups[k + 1] - groups[k]) * S;
    if (has_var_)
      for (int64_t c = 0; c < C; ++c) var_unbiased[c] = bn_detail::unbiased_var(var_biased[k * C + c], M);
    update_running_stats(slot, mean + k * C, has_var_ ? var_unbiased.data() : nullptr);
  }
}

std::string BatchStatNorm::family_name(const char* kind, int dims) const {
  return detail::concat(kind, dims, "d(", num_features_,
                        stat_batch_ > 0 ? detail::concat(", stat_batch=", stat_batch_) : std::string(), ")");
}

const float* BatchStatNorm::slot_mean(int64_t slot) const { return running_mean.data() + slot * num_features_; }
const float* BatchStatNorm::slot_var(int64_t slot) const { return running_var.data() + slot * num_features_; }

void BatchStatNorm::update_running_stats(int64_t slot, const float* batch_mean, const float* batch_var_unbiased) {
  if (!track_) return;
  const int64_t C = num_features_;
  if (precise_active_) {  // Precise BN: equal-weight sums, applied by end_precise_stats()
    for (int64_t c = 0; c < C; ++c) {
      precise_mean_sum_[slot * C + c] += batch_mean[c];
      if (has_var_) precise_var_sum_[slot * C + c] += batch_var_unbiased[c];
    }
    precise_count_[slot] += 1;
    return;
  }
  bn_detail::momentum_update(momentum_, num_batches_tracked.data() + slot, C, batch_mean,
                             running_mean.data() + slot * C, batch_var_unbiased,
                             has_var_ ? running_var.data() + slot * C : nullptr);
}

void BatchStatNorm::begin_precise_stats() {
  precise_active_ = true;
  precise_mean_sum_.assign(slots_ * num_features_, 0.0);
  precise_var_sum_.assign(slots_ * num_features_, 0.0);
  precise_count_.assign(slots_, 0);
}

void BatchStatNorm::end_precise_stats() {
  NL_CHECK(precise_active_, name(), ": end_precise_stats() without begin_precise_stats()");
  precise_active_ = false;
  if (!track_) return;
  const int64_t C = num_features_;
  for (int64_t s = 0; s < slots_; ++s) {
    if (precise_count_[s] == 0) continue;
    const double k = static_cast<double>(precise_count_[s]);
    for (int64_t c = 0; c < C; ++c) {
      running_mean.data()[s * C + c] = static_cast<float>(precise_mean_sum_[s * C + c] / k);
      if (has_var_) running_var.data()[s * C + c] = static_cast<float>(precise_var_sum_[s * C + c] / k);
    }
  }
}

Tensor BatchStatNorm::running_stats_forward(const Tensor& x, int64_t slot, const Tensor& weight, const Tensor& bias,
                                            bn_detail::BatchNormSpec spec) const {
  spec.fixed_mean = slot_mean(slot);
  spec.fixed_var = has_var_ ? slot_var(slot) : nullptr;
  return bn_detail::batch_norm(x, num_features_, weight, bias, spec);
}

Tensor BatchStatNorm::batch_stats_forward(const Tensor& x, int64_t slot, int64_t S, const Tensor& weight,
                                          const Tensor& bias, bn_detail::BatchNormSpec spec) {
  spec.groups = stat_groups(x.size(0));
  check_stat_groups(x, spec.groups, S);
  bn_detail::UsedStats used;
  Tensor y = bn_detail::batch_norm(x, num_features_, weight, bias, spec, &used);
  if (is_training())
    update_running_stats_per_group(slot, spec.groups, S, used.mean.data(), has_var_ ? used.var.data() : nullptr);
  return y;
}

namespace bn_detail {

std::vector<int64_t> channel_layout(const Tensor& x, int64_t C, int dims, const std::string& layer) {
  const int64_t rank = x.dim();
  if (dims == 1) {
    NL_CHECK(rank == 2 || rank == 3, layer, ": expected a 2-D [N, C] or 3-D [N, C, L] input, got ",
             shape_str(x.shape()));
  } else {
    NL_CHECK(rank == 4, layer, ": expected a 4-D [N, C, H, W] input, got ", shape_str(x.shape()));
  }
  NL_CHECK(x.size(1) == C, layer, ": input ", shape_str(x.shape()), " has ", x.size(1), " channels, expected ", C);
  int64_t S = 1;
  for (int64_t d = 2; d < rank; ++d) S *= x.size(d);
  return {x.size(0), C, S};
}

Shape channel_shape(int64_t C, int64_t rank) {
  Shape s(rank, 1);
  s[1] = C;
  return s;
}

std::vector<int64_t> stat_dims(int64_t rank) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < rank; ++d) dims.push_back(d);
  return dims;
}

Tensor group_mask(int64_t N, int64_t rank, int64_t n0, int64_t n1) {
  Shape shape(rank, 1);
  shape[0] = N;
  std::vector<float> in_group(N, 0.0f);
  for (int64_t n = n0; n < n1; ++n) in_group[n] = 1.0f;
  return Tensor::from_vector(shape, in_group);
}

Tensor reference_xhat(const Tensor& x, const std::vector<int64_t>& groups, int64_t S, float eps,
                      const GroupStatsFn& on_group) {
  const std::vector<int64_t> red = stat_dims(x.dim());
  const int64_t N = x.size(0);
  Tensor xhat;
  for (size_t k = 0; k + 1 < groups.size(); ++k) {
    const int64_t M = (groups[k + 1] - groups[k]) * S;
    const Tensor mask = group_mask(N, x.dim(), groups[k], groups[k + 1]);
    const Tensor mean_k = sum(x * mask, red, true) * (1.0f / static_cast<float>(M));
    const Tensor xmu = (x - mean_k) * mask;
    const Tensor var_k = sum(xmu * xmu, red, true) * (1.0f / static_cast<float>(M));  // biased
    const Tensor xhat_k = xmu * rsqrt(var_k + eps);
    xhat = xhat.defined() ? xhat + xhat_k : xhat_k;
    if (on_group) on_group(M, mean_k.to_vector(), var_k.to_vector());
  }
  return xhat;
}

float unbiased_var(float var_biased, int64_t M) {
  if (M <= 1) return var_biased;
  return static_cast<float>(var_biased * (static_cast<double>(M) / static_cast<double>(M - 1)));
}

void momentum_update(float momentum, float* num_batches_tracked, int64_t C, const float* batch_mean,
                     float* running_mean, const float* batch_var_unbiased, float* running_var) {
  *num_batches_tracked += 1.0f;
  const float f = momentum_factor(momentum, *num_batches_tracked);
  if (running_mean)
    for (int64_t c = 0; c < C; ++c) running_mean[c] = blend(running_mean[c], batch_mean[c], f);
  if (running_var)
    for (int64_t c = 0; c < C; ++c) running_var[c] = blend(running_var[c], batch_var_unbiased[c], f);
}

void check_more_than_one_value(int64_t M, const std::string& layer, const Tensor& x, const std::string& note) {
  NL_CHECK(M > 1, layer, ": Expected more than 1 value per channel when training, got input size ",
           shape_str(x.shape()), note);
}

// PyTorch's convention; f = 1/count when cumulative (Keras' 0.99 multiplies the old value).
float momentum_factor(float momentum, float num_batches_tracked) {
  return momentum >= 0.0f ? momentum : 1.0f / num_batches_tracked;
}

}  // namespace bn_detail

}  // namespace nl
