// normlab layers: Embedding. See embedding.hpp.
#include "layers/embedding.hpp"

#include <fmt/format.h>

namespace nl {

Embedding::Embedding(int64_t num, int64_t dim, Generator& gen) : num_embeddings(num), embedding_dim(dim) {
  NL_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive, got num_embeddings=", num, " dim=", dim);
  weight = Tensor::empty({num, dim});
  normal_(weight, 0.0f, 1.0f, gen);
  register_parameter("weight", weight);
}

Tensor Embedding::forward_ids(const std::vector<int32_t>& ids, const Shape& ids_shape) {
  NL_CHECK(static_cast<int64_t>(ids.size()) == shape_numel(ids_shape), name(), ": ", ids.size(),
           " ids do not fill shape ", ids_shape);
  for (int32_t id : ids)
    NL_CHECK(id >= 0 && id < num_embeddings, name(), ": id ", id, " out of range [0, ", num_embeddings, ")");
  return embedding(weight, ids, ids_shape);
}

Tensor Embedding::forward(const Tensor& x) {
  throw Error(name() + ": takes integer ids; call forward_ids(ids, ids_shape) (got a float tensor " +
              shape_str(x.shape()) + ")");
}

std::string Embedding::name() const { return fmt::format("Embedding({}, {})", num_embeddings, embedding_dim); }

}  // namespace nl
