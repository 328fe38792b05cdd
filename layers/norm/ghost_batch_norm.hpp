// normlab layers: Ghost Batch Normalization (Hoffer, Hubara & Soudry 2017).
//
// In training the batch of N samples is split along N into virtual ("ghost") batches of
// ghost_size samples; each is normalized with its own BatchNorm statistics (formulas in
// batch_norm.hpp, with M = n_k * S for a chunk of n_k samples) and the shared gamma/beta.
// The last chunk may be smaller; a leftover of a single sample is merged into the chunk
// before it (a one-sample chunk of an [N, C] input would have one value per channel).
//
// Running statistics: updated once per virtual batch, in order, with the layer's momentum
// (num_batches_tracked counts virtual batches). This is what the paper's algorithm and
// the usual "chunk + BatchNorm per chunk" implementations do, and it makes the running
// stats estimate the statistics the layer actually normalized with during training.
// Eval = BatchNorm eval. With ghost_size >= N it is BatchNorm exactly (tested).
#pragma once

#include "layers/norm/batch_norm.hpp"

namespace nl {

class GhostBatchNorm : public BatchStatNorm {
 public:
  GhostBatchNorm(int64_t num_features, int64_t ghost_size, int dims = 2, BatchNormOptions options = {});
  Tensor forward(const Tensor& x) override;
  Tensor reference_forward(const Tensor& x);
  std::string name() const override;  // "GhostBatchNorm2d(C, ghost=16)"
  // Chunk boundaries [0, b1, ..., N] along N for a batch of n samples.
  std::vector<int64_t> chunk_bounds(int64_t n) const;

  Tensor weight, bias;
  int64_t ghost_size;
  int dims;
  BatchNormOptions options;
};

}  // namespace nl
