// normlab apps: one optimizer step. See train_step.hpp.
#include "apps/train_step.hpp"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "apps/run_common.hpp"
#include "core/autograd.hpp"

namespace nl::app {

Tensor forward_batch(Model& model, const TrainBatch& batch) {
  if (batch.images.defined()) return model.forward(batch.images);
  const Tensor out = model.forward_ids(batch.ids, batch.ids_shape);
  return out.reshape({static_cast<int64_t>(batch.targets.size()), out.size(-1)});
}

// "" if every gradient is finite, else the first bad one by name and element.
static std::string first_non_finite_gradient(const Model& model) {
  for (auto& [name, p] : model.named_parameters()) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const float* d = g.data();
    for (int64_t i = 0; i < g.numel(); ++i)
      if (!std::isfinite(d[i])) return fmt::format("the gradient of {} is {} (element {})", name, d[i], i);
  }
  return "";
}

static double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string finish_gradients(Model& model, const StepOptions& options, double local_share, double* comm_seconds) {
  if (options.comm && options.comm->size() > 1) {
    thread_local std::vector<float> buffer;  // reused step after step
    const auto t0 = std::chrono::steady_clock::now();
    dist::allreduce_gradients(model.parameters(), static_cast<float>(local_share), buffer, *options.comm);
    if (comm_seconds) *comm_seconds += seconds_since(t0);
  }
  if (options.check_grads)
    if (std::string bad = first_non_finite_gradient(model); !bad.empty()) return bad;
  if (options.clip_grad_norm > 0.0f) clip_grad_norm(model.parameters(), options.clip_grad_norm);
  return "";
}

// Sums (loss * n, correct, n, stop) over ranks: out becomes the global batch's numbers.
static void combine_step_stats(StepResult& out, dist::Communicator& comm) {
  const double n = static_cast<double>(out.predictions);
  double stats[4] = {out.loss * n, static_cast<double>(out.correct), n, out.stop ? 1.0 : 0.0};
  comm.allreduce_sum(stats, 4);
  out.loss = static_cast<float>(stats[0] / stats[2]);
  out.correct = static_cast<int64_t>(stats[1]);
  out.predictions = static_cast<int64_t>(stats[2]);
  out.stop = stats[3] > 0;
  out.local_share = n / stats[2];
}

StepResult train_step(Model& model, Optimizer& optimizer, const TrainBatch& batch, const StepOptions& options) {
  const Tensor logits = forward_batch(model, batch);
  Tensor loss = cross_entropy(logits, batch.targets);
  StepResult out{loss.item(), 0, static_cast<int64_t>(batch.targets.size()), ""};
  {
    NoGradGuard no_grad;
    out.correct = count_correct(logits.detach(), batch.targets);
  }
  out.stop = options.stop_flag && options.stop_flag->load();
  if (options.comm && options.comm->size() > 1) {
    const auto t0 = std::chrono::steady_clock::now();
    combine_step_stats(out, *options.comm);
    out.comm_seconds += seconds_since(t0);
  }
  if (!std::isfinite(out.loss)) return out;  // the caller stops the run; no update
  optimizer.zero_grad();
  loss.backward();
  out.bad_gradient = finish_gradients(model, options, out.local_share, &out.comm_seconds);
  if (!out.bad_gradient.empty()) return out;
  optimizer.step();
  return out;
}

}  // namespace nl::app
