// normlab layers: BatchStatNorm, the base class of every layer that keeps running batch
// statistics (BatchNorm, MeanOnlyBatchNorm, BatchRenorm, RecurrentBatchNorm): the one
// running-statistics rule, statistics groups, Precise BN, and the family's shared helpers.
// The forward/backward math is in batch_norm.hpp; the fused op in batch_norm_op.hpp.
//
// x is viewed as [N, C, S]: N samples, C channels, S = L or H*W positions per channel.
// Channel c's M = N*S values are N strided planes of S contiguous floats.
//
// Choices (each one a place where some framework differs):
//  * Normalize with the *biased* variance; store the *unbiased* one (var * M/(M-1)) in
//    running_var, as PyTorch does (tiny-dnn/darknet normalize with the unbiased one).
//  * Momentum as PyTorch: running = (1 - momentum) * running + momentum * batch
//    (Keras' 0.99 is 1 - momentum). momentum < 0 means PyTorch's momentum=None: a
//    cumulative average, factor 1 / num_batches_tracked.
//  * Training with one value per channel (M == 1) throws nl::Error ("Expected more than 1
//    value per channel when training"), like PyTorch. dlib silently uses inference mode
//    instead; we refuse, because a "batch norm" that does not normalize hides a bug.
//    A batch of one image with H*W > 1 is legal (M = H*W).
//  * Eval uses the running statistics and changes no buffer. With track_running_stats =
//    false there are none, and eval normalizes with batch statistics (PyTorch too).
//
// Statistics batch (options.stat_batch = b > 0): the N samples are split along N into
// groups of b (the last one smaller; a leftover of a single sample joins the group before
// it, so an [N, C] input never has a one-value group) and each group is normalized with
// its own statistics, M = n_k * S, and the shared gamma/beta. This is Ghost BatchNorm
// (Hoffer et al. 2017; `--norm gbn` is BatchNorm with b = --ghost-batch) and what each
// worker of a data-parallel run with per-worker batch b computes. Running statistics get
// one momentum update per group, in order (num_batches_tracked counts groups), as rank 0
// of PyTorch DDP would with b samples per GPU. b = 0: one group, the whole batch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "layers/module.hpp"
#include "layers/norm/batch_norm_op.hpp"

namespace nl {

struct BatchNormOptions {
  float eps = 1e-5f;
  float momentum = 0.1f;  // < 0: cumulative moving average (PyTorch momentum=None)
  bool affine = true;     // learnable gamma (weight) and beta (bias)
  bool track_running_stats = true;
  int64_t stat_batch = 0;  // training statistics over groups of this many samples; 0 = whole batch
};

// The common base of the BatchNorm family: owns the running statistics and the
// Precise-BN protocol (precise_bn.hpp finds these layers with dynamic_cast).
//
// Buffers: running_mean [C] (RecurrentBatchNorm: [slots, C]), running_var likewise
// (undefined for MeanOnlyBatchNorm), num_batches_tracked [] (RecurrentBatchNorm: [slots]),
// a float count of the training updates of each slot.
class BatchStatNorm : public Module {
 public:
  Tensor running_mean, running_var, num_batches_tracked;

  int64_t num_features() const { return num_features_; }
  int64_t num_stat_slots() const { return slots_; }
  bool tracks_running_stats() const { return track_; }
  bool has_running_var() const { return has_var_; }
  float momentum() const { return momentum_; }
  int64_t stat_batch() const { return stat_batch_; }
  // The statistics groups {0, b1, ..., N} of a batch of N samples (see "Statistics batch").
  std::vector<int64_t> stat_groups(int64_t N) const;

  // Precise BN: between begin and end, each training-mode statistics update is added to
  // an equal-weight average instead of the momentum average, and num_batches_tracked is
  // left alone; end writes the averages into running_mean / running_var (slots that saw
  // no batch keep their old values).
  void begin_precise_stats();
  void end_precise_stats();
  bool precise_stats_active() const { return precise_active_; }

 protected:
  BatchStatNorm(int64_t num_features, int64_t slots, const BatchNormOptions& options, bool has_running_var);
  // Training needs more than one value per channel in every group (see "Choices").
  void check_stat_groups(const Tensor& x, const std::vector<int64_t>& groups, int64_t S) const;
  // One update of `slot` per group, in order, from the fused op's per-group mean and *biased*
  // var [groups * C] (var null for mean-only layers).
  void update_running_stats_per_group(int64_t slot, const std::vector<int64_t>& groups, int64_t S, const float* mean,
                                      const float* var_biased);
  // One training-mode update of `slot` with a batch's mean [C] and *unbiased* var [C]
  // (null for mean-only layers). Does nothing when running stats are not tracked.
  void update_running_stats(int64_t slot, const float* batch_mean, const float* batch_var_unbiased);
  // The family's two forwards through bn_detail::batch_norm (spec: eps, mean_only, renorm,
  // hooks; groups and fixed stats are filled in here). With the running stats of `slot`
  // (eval), or with batch statistics: the groups of x's N samples (S values per sample and
  // channel), the > 1 value check, and in training one update of `slot` per group, in order.
  Tensor running_stats_forward(const Tensor& x, int64_t slot, const Tensor& weight, const Tensor& bias,
                               bn_detail::BatchNormSpec spec) const;
  Tensor batch_stats_forward(const Tensor& x, int64_t slot, int64_t S, const Tensor& weight, const Tensor& bias,
                             bn_detail::BatchNormSpec spec);
  // "{kind}{dims}d(C)", or "{kind}{dims}d(C, stat_batch=b)": the family's name().
  std::string family_name(const char* kind, int dims) const;
  // Running stats of a slot as float pointers ([C] each).
  const float* slot_mean(int64_t slot) const;
  const float* slot_var(int64_t slot) const;

 private:
  int64_t num_features_, slots_, stat_batch_;
  float momentum_;
  bool track_, has_var_;
  bool precise_active_ = false;
  std::vector<double> precise_mean_sum_, precise_var_sum_;
  std::vector<int64_t> precise_count_;
};


namespace bn_detail {
// Checks x's rank for a BatchNorm{dims}d and returns {N, C, S}; names `layer` in errors.
std::vector<int64_t> channel_layout(const Tensor& x, int64_t C, int dims, const std::string& layer);
// Shape [1, C, 1...] to broadcast a per-channel tensor against x of rank `rank`.
Shape channel_shape(int64_t C, int64_t rank);
// A group of M values' biased variance -> unbiased (Bessel: var * M / (M - 1)), as stored
// (M = 1: the biased 0, there is nothing to correct; the BatchNorm family refuses M = 1).
float unbiased_var(float var_biased, int64_t M);
// The momentum rule: running = (1 - f) * running + f * batch, f = momentum, or
// 1 / num_batches_tracked (counting this update) when momentum < 0 (cumulative average).
float momentum_factor(float momentum, float num_batches_tracked);
inline float blend(float running, float batch, float f) { return (1.0f - f) * running + f * batch; }
// The one running-statistics update (BatchStatNorm, InstanceNorm, EvoNorm-B0): counts it in
// *num_batches_tracked (a buffer, so a resumed run continues the count) and blends the
// batch's mean and unbiased var [C] into the running ones (pairs may be null).
void momentum_update(float momentum, float* num_batches_tracked, int64_t C, const float* batch_mean,
                     float* running_mean, const float* batch_var_unbiased, float* running_var);
// Training needs more than one value per channel (M of them); the family's error, naming x.
void check_more_than_one_value(int64_t M, const std::string& layer, const Tensor& x, const std::string& note = "");

// For the composite references: the dims a channel's statistics reduce over ({0, 2, ...}),
// the [N, 1, ...] 0/1 mask of the samples [n0, n1) of a statistics group, and xhat of
// batch-statistics BatchNorm from primitive autograd ops (masked mean and var, rsqrt), which
// calls on_group(M, mean, var) after each group with its float [C] mean and biased var.
std::vector<int64_t> stat_dims(int64_t rank);
Tensor group_mask(int64_t N, int64_t rank, int64_t n0, int64_t n1);
using GroupStatsFn = std::function<void(int64_t M, const std::vector<float>& mean, const std::vector<float>& var)>;
Tensor reference_xhat(const Tensor& x, const std::vector<int64_t>& groups, int64_t S, float eps,
                      const GroupStatsFn& on_group);
}  // namespace bn_detail

}  // namespace nl
