// normlab layers: the Transformer block. See transformer.hpp.
#include "layers/transformer.hpp"

#include <fmt/format.h>

namespace nl {

TransformerBlock::TransformerBlock(int64_t d, int64_t heads, const NormOptions& norm, bool pre, float p,
                                   Generator& gen)
    : pre_ln(pre), norm_name_(norm.name) {
  norm1 = register_module("norm1", make_norm(norm, {d}, NormSite::tokens));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(d, heads, gen));
  norm2 = register_module("norm2", make_norm(norm, {d}, NormSite::tokens));
  fc1 = register_module("fc1", std::make_shared<Linear>(d, 4 * d, true, gen));
  fc2 = register_module("fc2", std::make_shared<Linear>(4 * d, d, true, gen));
  if (p > 0.0f) dropout_ = register_module("dropout", std::make_shared<Dropout>(p, gen));
}

Tensor TransformerBlock::mlp(const Tensor& x) { return fc2->forward(gelu(fc1->forward(x))); }
Tensor TransformerBlock::drop(const Tensor& x) { return dropout_ ? dropout_->forward(x) : x; }

Tensor TransformerBlock::forward(const Tensor& x) {
  if (pre_ln) {
    Tensor y = add(x, drop(attn->forward(norm1->forward(x))));
    return add(y, drop(mlp(norm2->forward(y))));
  }
  Tensor y = norm1->forward(add(x, drop(attn->forward(x))));
  return norm2->forward(add(y, drop(mlp(y))));
}

std::string TransformerBlock::name() const {
  return fmt::format("TransformerBlock(d={}, heads={}, {}, norm {})", attn->d_model, attn->heads,
                     pre_ln ? "pre-LN" : "post-LN", norm_name_);
}

}  // namespace nl
