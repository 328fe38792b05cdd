// normlab layers: the Transformer block of a decoder-only language model.
//
//   pre-LN  (GPT-2, Xiong et al. 2020):  x = x + attn(norm1(x));  x = x + mlp(norm2(x))
//   post-LN (Vaswani et al. 2017):       x = norm1(x + attn(x));  x = norm2(x + mlp(x))
//   mlp(x) = fc2(gelu(fc1(x))), d -> 4d -> d
//
// norm1/norm2 come from the factory at NormSite::tokens, so the block runs with ln, rms,
// bn (statistics over all B*T tokens: note that this lets a token's output depend on
// later tokens of the batch, which a causal LM should not do -- a lesson, not a bug) or
// none. Optional dropout on the attention and MLP outputs before the residual add.
#pragma once

#include <memory>

#include "core/random.hpp"
#include "layers/attention.hpp"
#include "layers/dropout.hpp"
#include "layers/linear.hpp"
#include "layers/norm/factory.hpp"

namespace nl {

class TransformerBlock : public Module {
 public:
  TransformerBlock(int64_t d_model, int64_t heads, const NormOptions& norm, bool pre_ln = true,
                   float dropout = 0.0f, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [B, T, D] -> [B, T, D]
  std::string name() const override;

  std::shared_ptr<Module> norm1, norm2;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<Linear> fc1, fc2;
  bool pre_ln;

 private:
  Tensor mlp(const Tensor& x);
  Tensor drop(const Tensor& x);
  std::shared_ptr<Dropout> dropout_;  // null when p == 0
  std::string norm_name_;
};

}  // namespace nl
