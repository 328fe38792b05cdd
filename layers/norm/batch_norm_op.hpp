// normlab layers: the BatchNorm family's fused op (bn_detail::batch_norm), one autograd
// node written as the steps of its derivation, with the names of batch_norm.hpp's formulas.
//
// x (any layout) is read as [N, C, S]; its N samples form statistics groups [n_k, n_k+1)
// (batch_norm.hpp, "Statistics batch"). Everything below is per (group k, channel c), over
// the group's M = (n_k+1 - n_k) * S values of the channel:
//
//   forward                                     backward (dy -> dx, dgamma, dbeta)
//   1. partial moments  count, mean, m2         1. grad sums  sum_dy, sum_dy_xmu = sum dy * (x - mean)
//        (m2 = sum (x - mean)^2)                2. dgamma = sum_dy_xhat * r + sum_dy * d, dbeta = sum_dy
//   2. [combine_moments]                             (sum_dy_xhat = rstd * sum_dy_xmu)
//   3. var = m2 / M, rstd = 1/sqrt(var + eps)   3. [combine_grad_sums]
//      a = rstd * r * gamma                     4. dx = a * (dy - sum_dy / M - xhat * sum_dy_xhat / M)
//      b = beta + d * gamma                        computed as dx = dy * a + (x - mean) * dx_slope + dx_shift
//   4. y = (x - mean) * a + b  (= (xhat*r + d)*gamma + beta)
//
// batch_norm_op.cpp has a function per step: forward = partial_moments (1), fold (3),
// normalize (4); backward = grad_sums (1, 2), grad_input (4).
//
// ReLU fused (spec.relu, BatchNorm followed by ReLU: the models' conv - norm - relu): step 4
// writes y = max(0, (x - mean) * a + b), and backward starts from dy' = dy * [y > 0] in place
// of dy, computed inside steps 1 and 4 of backward. Same bits as the two ops; what it saves is
// the ReLU's own pass over memory each way and the pre-activation tensor.
//
// r, d are BatchRenorm's constants (1, 0 otherwise). Mean-only mode: var is unused, a = 1,
// dx = dy - sum_dy / M. Fixed mode (eval): mean, var are the running stats, constants in
// backward (dx = dy * a).
//
// The two hooks are where a data-parallel SyncBN plugs in its all-reduce: combine_moments
// gets this worker's partial moments and must leave the moments of all workers' values
// (merge_moments is the formula); combine_grad_sums must leave the sums over all workers.
// dgamma/dbeta come from this worker's sums (step 2 before 3), so the usual all-reduce of
// parameter gradients adds them up exactly once. Without hooks each thread runs steps 1-4
// per channel while its planes are in cache; with one, step 1 runs for all channels first.
// [N, C] input (BatchNorm1d, S = 1) runs each step over blocks of whole rows instead, with
// per-block partial results merged in block order (batch_norm_op.cpp, RowBlock).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/tensor.hpp"

namespace nl::bn_detail {

// Per (group k, channel c) at index k * C + c.
struct GroupMoments {
  std::vector<double> count, mean, m2;  // values, their mean, sum of squared deviations
};
struct GradSums {
  std::vector<double> sum_dy, sum_dy_xmu;  // sum dy, sum dy * (x - mean)
};
// Chan et al.'s pairwise merge: `into` becomes the moments of both sets of values.
void merge_moments(GroupMoments& into, const GroupMoments& other);

using RenormFn = std::function<void(int64_t k, int64_t c, float mean, float var, float& r, float& d)>;

struct BatchNormSpec {
  float eps = 1e-5f;
  std::vector<int64_t> groups = {};  // {0, n_1, ..., N}; empty = one group, the whole batch
  bool mean_only = false;       // y = x - mean + beta (no var, no gamma)
  bool relu = false;            // y = max(0, ...): ReLU fused (see above)
  // Fixed mode (eval): the running statistics [C], used for every group.
  const float* fixed_mean = nullptr;
  const float* fixed_var = nullptr;  // unused when mean_only
  // BatchRenorm: r, d of (k, c) from that group's mean and biased var. For each channel it is
  // called for groups 0, 1, ... in order (BatchRenorm carries its running stats along).
  RenormFn renorm = {};
  std::function<void(GroupMoments&)> combine_moments = {};  // SyncBN (see above); empty = local
  std::function<void(GradSums&)> combine_grad_sums = {};
  const char* node_name = "batch_norm";
};

// The statistics the op normalized with, [groups * C] each: mean and *biased* var (var is
// zeros in mean-only mode).
struct UsedStats {
  std::vector<float> mean, var;
};

// weight (gamma) and bias (beta) [C] may be undefined (no affine).
Tensor batch_norm(const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias, const BatchNormSpec& spec,
                  UsedStats* used = nullptr);

}  // namespace nl::bn_detail
