// normlab layers: SyncBatchNorm, BatchNorm whose training statistics span the global batch
// of a data-parallel run (PyTorch's torch.nn.SyncBatchNorm). `--norm syncbn`, or `--sync-bn`
// with `--norm bn`. In one process it is BatchNorm; under `mpirun -np K` rank r holds n_r of
// the N = sum_r n_r samples, M_r = n_r * S values per channel, M = sum_r M_r.
//
// Forward (training), per channel c:
//   local moments    count_r = M_r, mean_r = 1/M_r sum x, m2_r = sum (x - mean_r)^2
//   all-gather       every rank gets every (count_r, mean_r, m2_r) and merges them in rank
//                    order (Chan et al.): mean, m2 of all M values, the same bits everywhere;
//                    correct for unequal counts (PyTorch gathers mean, invstd, count likewise)
//   var  = m2 / M (biased)    rstd = 1 / sqrt(var + eps)    xhat = (x - mean) * rstd
//   y    = xhat * gamma + beta
//   running_var gets var * M / (M - 1): Bessel's correction with the *global* count.
//
// Backward. Rank r back-propagates its own loss L_r (the mean over its n_r samples); the
// data-parallel step then averages parameter gradients with weights w_r = n_r / N
// (core/distributed.hpp), i.e. it trains L = sum_r w_r L_r. For that L, per channel:
//   sum_dy_r = sum dy            sum_dy_xhat_r = sum dy * xhat        (this rank's values)
//   all-reduce       total_dy = 1/w_r * sum_s w_s sum_dy_s,  total_dy_xhat likewise
//                    (with equal counts, w = 1/K: the plain sums over ranks, as PyTorch)
//   dx     = rstd * gamma / M * (M * dy - total_dy - xhat * total_dy_xhat)
//   dgamma = sum_dy_xhat_r       dbeta = sum_dy_r        (this rank's: the gradient
//                                                          all-reduce adds the ranks up)
// so that sum_r w_r * (rank r's gradients) is exactly the gradient of L; for the input,
// w_r * dx is dL/dx. tests/mpi/test_sync_batch_norm.cpp checks all of it against BatchNorm
// on the whole batch in one process.
//
// The code (sync_batch_norm.cpp) is BatchNorm's fused op, bn_detail::batch_norm, with the
// all-gather and the all-reduce in its two hooks (batch_norm_op.hpp).
//
// Eval mode uses the running statistics, as BatchNorm (no communication). Every training
// forward and backward is a collective call: all ranks must run the layer together.
// Statistics groups (--stat-batch) do not apply: the point is one group, the global batch.
#pragma once

#include "layers/norm/batch_norm.hpp"

namespace nl {

class SyncBatchNorm : public BatchNorm {
 public:
  SyncBatchNorm(int64_t num_features, int dims = 2, BatchNormOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string name() const override;  // "SyncBatchNorm2d(C)"
};

}  // namespace nl
