// normlab apps: one optimizer step of a run.
//
//   logits = model(batch)            forward, in training mode
//   loss   = cross_entropy(logits, targets)
//   [combine_step_stats]             data parallel: the global batch's loss, accuracy, count
//   loss.backward()                  gradients of every parameter
//   finish_gradients(...)            the complete gradients: averaged over ranks, checked, clipped
//   optimizer.step()                 the update
//
// Data parallel (options.comm with size K > 1): each rank holds its part of the global batch.
// One small all-reduce gives every rank the global loss (so all ranks stop together on a
// non-finite loss), the counts and the stop request; one all-reduce over a flat buffer gives
// every rank the global batch's gradient, sum_r (n_r / N) * grad_r, so every rank takes the
// same step.
//
// A non-finite loss stops before backward, a non-finite gradient (--check-grads) before the
// update: the model keeps the last good weights, and the caller ends the run as diverged.
#pragma once

#include <cmath>
#include <cstdint>
#include <atomic>
#include <string>
#include <vector>

#include "apps/train_data.hpp"
#include "core/distributed.hpp"
#include "layers/models/model.hpp"
#include "optim/optimizer.hpp"

namespace nl::app {

struct StepOptions {
  bool check_grads = false;    // a NaN/Inf gradient stops the step (--check-grads)
  float clip_grad_norm = 0.0f; // 0 = off
  dist::Communicator* comm = nullptr;          // data parallel when size() > 1
  const std::atomic<bool>* stop_flag = nullptr;  // this process was asked to stop (Ctrl-C)
};

struct StepResult {
  float loss = NAN;
  int64_t correct = 0, predictions = 0;  // predictions: images or tokens (also the throughput count)
  std::string bad_gradient;  // --check-grads: what was not finite (the update was skipped)
  bool stop = false;         // some rank was asked to stop: every rank stops after this step
  double local_share = 1.0;  // this rank's predictions / the global batch's (1 in one process)
  double comm_seconds = 0.0; // time in this step's all-reduces (includes waiting for slower ranks)
};

StepResult train_step(Model& model, Optimizer& optimizer, const TrainBatch& batch, const StepOptions& options);

// The logits of a batch as [predictions, classes] (text: one row per position).
Tensor forward_batch(Model& model, const TrainBatch& batch);

// Between backward and the update: the one place where the step's gradients are complete.
// Data-parallel training averages the gradients across workers here, before anything else,
// so every worker checks and clips the same global gradient and takes the same step.
// Returns what was not finite ("" = all fine; then the gradients are clipped if asked).
// comm_seconds (optional) receives the time the all-reduce took.
std::string finish_gradients(Model& model, const StepOptions& options, double local_share = 1.0,
                             double* comm_seconds = nullptr);

}  // namespace nl::app
