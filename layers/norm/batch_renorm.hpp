// normlab layers: Batch Renormalization (Ioffe 2017).
//
// Per channel over M = N*S values, with sigma = sqrt(var + eps) (biased batch var) and
// sigma_run = sqrt(running_var + eps):
//   r = clip(sigma / sigma_run, 1/r_max, r_max)
//   d = clip((mean - running_mean) / sigma_run, -d_max, d_max)
//   xhat = (x - mean) / sigma            y = (xhat * r + d) * gamma + beta
// r and d are constants in backward (stop-gradient), so with g = gamma * r:
//   dgamma = sum dy * (xhat * r + d)     dbeta = sum dy
//   dxhat  = dy * g
//   dx     = rstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
// which is BatchNorm's backward with gamma replaced by gamma * r. With r = 1, d = 0 it is
// BatchNorm exactly (tested). Running stats are updated like BatchNorm's, *after* r and d
// are computed from the old ones. With a statistics batch (batch_norm.hpp), each group is
// one step: its r, d use the running stats updated by the groups before it.
//
// Warm-up: at training step t (= num_batches_tracked before the step) with W warm-up steps,
//   r_max(t) = 1 + (r_max - 1) * min(1, t / W)      d_max(t) = d_max * min(1, t / W)
// so the first step is plain BatchNorm (the running stats are still 0/1 then). W = 0: no ramp.
// Eval = BatchNorm eval. Requires track_running_stats.
//
// last_clip_stats(): of the last training forward, how many (group, channel) pairs had r or d
// clipped (the value before the clip outside [1/r_max, r_max] or [-d_max, d_max]): the Batch
// Renorm paper's account of how often the correction is active (`train --diagnostics` writes
// the fractions). During a warm-up's first step every pair whose r != 1 or d != 0 counts.
#pragma once

#include "layers/norm/batch_norm.hpp"

namespace nl {

// (group, channel) pairs of one training forward: r clipped, d clipped, either, of `pairs`.
struct RenormClipStats {
  int64_t r = 0, d = 0, either = 0, pairs = 0;
};

struct BatchRenormOptions : BatchNormOptions {
  float r_max = 3.0f;
  float d_max = 5.0f;
  int64_t warmup_steps = 0;
};

class BatchRenorm : public BatchStatNorm {
 public:
  BatchRenorm(int64_t num_features, int dims = 2, BatchRenormOptions options = {});
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;  // "BatchRenorm2d(C)"
  float current_r_max() const;  // after warm-up ramp, for the next training step
  float current_d_max() const;
  float r_max_at(float step) const;  // the clips at training step `step` (num_batches_tracked)
  float d_max_at(float step) const;
  const RenormClipStats& last_clip_stats() const { return clip_stats_; }

  Tensor weight, bias;
  int dims;
  BatchRenormOptions options;

 private:
  // r, d of one channel from its batch mean/var and the running statistics (formulas above);
  // returns bit 1 if r was clipped, bit 2 if d was.
  int renorm_constants(float mean, float var, float running_mean, float running_var, float r_max, float d_max,
                       float& r, float& d) const;
  RenormClipStats clip_stats_;
};

}  // namespace nl
