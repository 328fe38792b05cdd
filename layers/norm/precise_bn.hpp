// normlab layers: Precise BatchNorm (Wu & Johnson 2021, "Rethinking 'Batch' in BatchNorm").
//
// The running statistics a BatchNorm accumulates with momentum are an exponential average
// over *changing* weights, dominated by the last few batches. Precise BN freezes the
// weights and recomputes them as a true population estimate over K batches:
//   running_mean = 1/K sum_k mean_k         running_var = 1/K sum_k var_k (unbiased)
// i.e. the equal-weight average of per-batch means and of per-batch unbiased variances.
// This is what fvcore's update_bn_stats does ("average of variance"); it is an unbiased
// estimate of the population variance when batches are i.i.d. (we do not add Var[means],
// the between-batch term, because fvcore/the paper's reference code do not).
//
// Every BatchStatNorm layer in the model takes part (found by walking named_children()
// recursively and dynamic_cast): BatchNorm (with a statistics batch each group counts as
// one batch), MeanOnlyBatchNorm (mean only), BatchRenorm and RecurrentBatchNorm (per
// time step). Parameters are untouched; forwards run in training mode without autograd.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "layers/norm/batch_norm.hpp"

namespace nl {

// Every BatchStatNorm in `model` (including model itself), with dotted names ("" = root).
std::vector<std::pair<std::string, BatchStatNorm*>> find_batch_stat_norms(Module& model);

// Runs model(next_batch()) for up to num_batches batches (stops early when next_batch
// returns an undefined Tensor) and replaces the running statistics of every BatchStatNorm
// that tracks them. Restores the model's train/eval mode. Returns the batches used.
// Throws nl::Error if the model has no BatchStatNorm layer or num_batches < 1.
int64_t update_precise_bn_stats(Module& model, const std::function<Tensor()>& next_batch, int64_t num_batches);

// The same, with a custom forward (e.g. an LSTM that takes extra arguments).
// run_one_batch runs one forward and returns false when there is no more data.
int64_t update_precise_bn_stats_custom(Module& model, const std::function<bool()>& run_one_batch,
                                       int64_t num_batches);

}  // namespace nl
