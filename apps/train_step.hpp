// normlab apps: one optimizer step of a run.
//
//   logits = model(batch)            forward, in training mode
//   loss   = cross_entropy(logits, targets)
//   loss.backward()                  gradients of every parameter
//   finish_gradients(...)            the complete gradients: checked, clipped
//   optimizer.step()                 the update
//
// A non-finite loss stops before backward, a non-finite gradient (--check-grads) before the
// update: the model keeps the last good weights, and the caller ends the run as diverged.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "apps/train_data.hpp"
#include "layers/models/model.hpp"
#include "optim/optimizer.hpp"

namespace nl::app {

struct StepOptions {
  bool check_grads = false;    // a NaN/Inf gradient stops the step (--check-grads)
  float clip_grad_norm = 0.0f; // 0 = off
};

struct StepResult {
  float loss = NAN;
  int64_t correct = 0, predictions = 0;  // predictions: images or tokens (also the throughput count)
  std::string bad_gradient;  // --check-grads: what was not finite (the update was skipped)
};

StepResult train_step(Model& model, Optimizer& optimizer, const TrainBatch& batch, const StepOptions& options);

// The logits of a batch as [predictions, classes] (text: one row per position).
Tensor forward_batch(Model& model, const TrainBatch& batch);

// Between backward and the update: the one place where the step's gradients are complete.
// Data-parallel training averages the gradients across workers here, before anything else,
// so every worker checks and clips the same global gradient and takes the same step.
// Returns what was not finite ("" = all fine; then the gradients are clipped if asked).
std::string finish_gradients(Model& model, const StepOptions& options);

}  // namespace nl::app
