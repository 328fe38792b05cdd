// normlab layers: Recurrent Batch Normalization (Cooijmans et al. 2016), the BatchNorm
// used inside an LSTM on W_x x_t and W_h h_{t-1}.
//
// forward(x, t) with x [N, D] normalizes each feature over the batch exactly as
// BatchNorm1d (formulas in batch_norm.hpp), but keeps *separate running statistics per
// time step* t: running_mean / running_var are [max_steps, D], row t for step t; steps
// t >= max_steps use (and update) the last row, as the paper does for long sequences.
// gamma/beta are shared across time steps (the paper: separate statistics, shared
// parameters); gamma is initialized to 0.1 (the paper's advice, so tanh/sigmoid gates
// start in their linear range), beta to 0. num_batches_tracked is [max_steps].
#pragma once

#include "layers/norm/batch_norm.hpp"

namespace nl {

struct RecurrentBatchNormOptions : BatchNormOptions {
  float gamma_init = 0.1f;
};

class RecurrentBatchNorm : public BatchStatNorm {
 public:
  RecurrentBatchNorm(int64_t num_features, int64_t max_steps, RecurrentBatchNormOptions options = {});
  Tensor forward(const Tensor& x, int64_t t);  // x: [N, D], t >= 0
  static constexpr int64_t kObservedStep = 1;  // the time step a NormObserver sees (forward's comment)
  Tensor reference_forward(const Tensor& x, int64_t t);
  // Module::forward without a time step is an error (it would silently use step 0).
  Tensor forward(const Tensor& x) override;
  std::string name() const override;  // "RecurrentBatchNorm(D, steps=T)"

  Tensor weight, bias;  // [D], shared by all steps
  int64_t max_steps;
  RecurrentBatchNormOptions options;
};

}  // namespace nl
