// normlab layers: causal multi-head self-attention, the GPT form.
//
//   q, k, v = split(x W_qkv^T + b_qkv)                 x: [B, T, D], one fused [3D, D] projection
//   per head (D = heads * hd):  q, k, v: [T, hd] slices of the qkv rows
//   att = softmax(q k^T / sqrt(hd) + mask)             mask[i][j] = -inf for j > i (no peeking ahead)
//   y   = (att v) merged back to [B, T, D], then y W_proj^T + b_proj
//
// The parameter layout (qkv: [3D, D], rows q then k then v; proj: [D, D]) is the one of the
// reference benchmark's Block, so weights copy over from PyTorch unchanged.
//
// The middle part is one fused op, causal_attention, with a hand-written backward:
//   - q, k and v are read in place from the [B, T, 3D] projection (sgemm leading dimension
//     3D), and each head's output is written straight into its columns of y [B, T, D]: no
//     split, permute or merge copies;
//   - the mask is never materialized: row i of the scores takes its softmax over j <= i in
//     one pass (max, exp-and-sum, scale) and the entries j > i are exact zeros;
//   - backward, per (batch, head):  dP = dY V^T,  dS = P * (dP - rowsum(dP * P)) / sqrt(hd),
//     dQ = dS K,  dK = dS^T Q,  dV = P^T dY, written into the matching columns of d(qkv).
// The B * heads pairs are independent, so they are split across threads in fixed chunks.
#pragma once

#include <memory>

#include "core/random.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"

namespace nl {

// qkv [B, T, 3D] (q, k, v blocks of D columns, each `heads` heads wide) -> y [B, T, D].
Tensor causal_attention(const Tensor& qkv, int64_t heads);

class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(int64_t d_model, int64_t heads, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;  // [B, T, D] -> [B, T, D]
  std::string name() const override;
  std::shared_ptr<Linear> qkv, proj;
  int64_t d_model, heads;
};

}  // namespace nl
