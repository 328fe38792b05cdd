// normlab layers: Dropout. See dropout.hpp.
#include "layers/dropout.hpp"

#include <fmt/format.h>

namespace nl {

Dropout::Dropout(float prob, Generator& gen) : p(prob), gen_(&gen) {
  NL_CHECK(prob >= 0.0f && prob < 1.0f, "Dropout: p must be in [0, 1), got ", prob);
}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p == 0.0f) return x;
  return dropout(x, p, true, *gen_);
}

std::string Dropout::name() const { return fmt::format("Dropout(p={})", p); }

}  // namespace nl
