// normlab layers: causal multi-head self-attention, the GPT form.
//
//   q, k, v = split(x W_qkv^T + b_qkv)                 x: [B, T, D], one fused [3D, D] projection
//   per head (D = heads * hd):  q, k, v: [B, heads, T, hd]
//   att = softmax(q k^T / sqrt(hd) + mask)             mask[i][j] = -inf for j > i (no peeking ahead)
//   y   = (att v) merged back to [B, T, D], then y W_proj^T + b_proj
//
// The parameter layout (qkv: [3D, D], rows q then k then v; proj: [D, D]) is the one of the
// reference benchmark's Block, so weights copy over from PyTorch unchanged. The scores of
// all heads are two batched matmuls ([B*heads] batches).
#pragma once

#include <memory>

#include "core/random.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"

namespace nl {

class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(int64_t d_model, int64_t heads, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [B, T, D] -> [B, T, D]
  std::string name() const override;
  std::shared_ptr<Linear> qkv, proj;
  int64_t d_model, heads;

 private:
  Tensor causal_mask(int64_t T);  // [T, T]: 0 on and below the diagonal, -inf above
  Tensor mask_;
};

}  // namespace nl
