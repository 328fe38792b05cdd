// normlab layers: SyncBatchNorm (see sync_batch_norm.hpp for the math; names match). It is
// BatchNorm's fused op (batch_norm_op.hpp) with its two hooks filled in: combine_moments
// all-gathers every rank's (count, mean, m2) and merges them in rank order, combine_grad_sums
// all-reduces the share-weighted (sum_dy, sum_dy_xmu; sum_dy_xhat = rstd * sum_dy_xmu with
// the one global rstd, so reducing either is the same). Everything else, kernels included,
// is BatchNorm's; in one process the layer gives BatchNorm's bits.
#include "layers/norm/sync_batch_norm.hpp"

#include <memory>
#include <vector>

#include "core/distributed.hpp"

namespace nl {

SyncBatchNorm::SyncBatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchNorm(num_features, dims_, options_) {
  NL_CHECK(options_.stat_batch == 0, name(), ": statistics groups (stat_batch ", options_.stat_batch,
           ") do not apply; SyncBatchNorm normalizes over the global batch");
}

std::string SyncBatchNorm::name() const { return family_name("SyncBatchNorm", dims); }

Tensor SyncBatchNorm::forward(const Tensor& x_in) {
  if (!is_training()) return BatchNorm::forward(x_in);
  const Tensor x = report_norm_input(x_in);
  const auto layout = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t C = layout[1], local_M = layout[0] * layout[2];
  // share = w_r = M_r / M, set by the forward hook, read by the backward one.
  auto share = std::make_shared<double>(1.0);
  int64_t M = 0;

  bn_detail::BatchNormSpec spec{.eps = options.eps, .node_name = "sync_batch_norm"};
  spec.combine_moments = [&](bn_detail::GroupMoments& moments) {
    dist::Communicator& comm = dist::world();
    std::vector<double> local(3 * C), all(3 * C * comm.size());
    for (int64_t c = 0; c < C; ++c)
      local[3 * c] = moments.count[c], local[3 * c + 1] = moments.mean[c], local[3 * c + 2] = moments.m2[c];
    comm.allgather(local.data(), 3 * C, all.data());
    bn_detail::GroupMoments merged{std::vector<double>(C, 0.0), std::vector<double>(C, 0.0),
                                   std::vector<double>(C, 0.0)};
    bn_detail::GroupMoments rank_r = merged;
    for (int r = 0; r < comm.size(); ++r) {  // rank order: the same bits on every rank
      for (int64_t c = 0; c < C; ++c) {
        const double* m = &all[(r * C + c) * 3];
        rank_r.count[c] = m[0], rank_r.mean[c] = m[1], rank_r.m2[c] = m[2];
      }
      bn_detail::merge_moments(merged, rank_r);
    }
    moments = merged;
    M = static_cast<int64_t>(merged.count[0]);
    // Every rank has the global count: all of them refuse together, none waits in backward.
    bn_detail::check_more_than_one_value(M, name(), x, detail::concat(" (the global batch has ", M, " values per channel)"));
    *share = static_cast<double>(local_M) / static_cast<double>(M);
  };
  spec.combine_grad_sums = [share, C](bn_detail::GradSums& sums) {
    // total = 1/w_r * sum_s w_s * sums_s: the gradient of L = sum_r w_r L_r (header).
    std::vector<double> total(2 * C);
    for (int64_t c = 0; c < C; ++c) total[c] = *share * sums.sum_dy[c], total[C + c] = *share * sums.sum_dy_xmu[c];
    dist::world().allreduce_sum(total.data(), 2 * C);
    for (int64_t c = 0; c < C; ++c) sums.sum_dy[c] = total[c] / *share, sums.sum_dy_xmu[c] = total[C + c] / *share;
  };

  bn_detail::UsedStats used;
  Tensor y = bn_detail::batch_norm(x, C, weight, bias, spec, &used);
  std::vector<float> var_unbiased(C);  // Bessel's correction with the *global* count
  for (int64_t c = 0; c < C; ++c) var_unbiased[c] = bn_detail::unbiased_var(used.var[c], M);
  update_running_stats(0, used.mean.data(), var_unbiased.data());
  return report_norm_output(y);
}

}  // namespace nl
