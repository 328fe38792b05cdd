// normlab layers: mean-only BatchNorm (Salimans & Kingma 2016, "Weight Normalization"),
// meant to follow a weight-normalized layer: it centres each channel, no scaling.
//
// Forward (training), per channel c over its M = N*S values (layout as in batch_norm.hpp):
//   mean = 1/M sum x            y = x - mean + beta
// Backward:
//   dbeta = sum dy              dx = dy - 1/M sum dy
// Eval: y = x - running_mean + beta.  running_mean is updated like BatchNorm's (momentum
// convention, cumulative for momentum < 0); there is no variance and no gamma.
// Training with one value per channel throws nl::Error (y would be beta whatever x is).
#pragma once

#include "layers/norm/batch_norm.hpp"

namespace nl {

class MeanOnlyBatchNorm : public BatchStatNorm {
 public:
  // dims and options as BatchNorm (eps unused; affine = has beta).
  MeanOnlyBatchNorm(int64_t num_features, int dims = 2, BatchNormOptions options = {});
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;  // "MeanOnlyBatchNorm2d(C)"

  Tensor bias;  // beta [C], init 0; undefined if !affine
  int dims;
  BatchNormOptions options;
};

}  // namespace nl
