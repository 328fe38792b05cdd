// normlab layers: Embedding, a lookup table of learned vectors: row ids[i] of weight.
// Initialised N(0, 1) like torch.nn.Embedding. Its input is integer ids, not a float
// tensor, so it is called through forward_ids(); Module::forward throws.
#pragma once

#include <cstdint>
#include <vector>

#include "core/random.hpp"
#include "layers/module.hpp"

namespace nl {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen = default_generator());
  // ids: shape ids_shape (e.g. [B, T]), values in [0, num_embeddings) -> ids_shape + [dim].
  Tensor forward_ids(const std::vector<int32_t>& ids, const Shape& ids_shape);
  Tensor forward(const Tensor& x) override;  // throws: use forward_ids
  std::string name() const override;
  Tensor weight;  // [num_embeddings, embedding_dim]
  int64_t num_embeddings, embedding_dim;
};

}  // namespace nl
