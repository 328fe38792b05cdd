// normlab layers: causal multi-head self-attention. See attention.hpp.
#include "layers/attention.hpp"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace nl {

CausalSelfAttention::CausalSelfAttention(int64_t d, int64_t h, Generator& gen) : d_model(d), heads(h) {
  NL_CHECK(d > 0 && h > 0 && d % h == 0, "CausalSelfAttention: heads=", h, " must divide d_model=", d);
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, gen));
}

Tensor CausalSelfAttention::causal_mask(int64_t T) {
  // Cached: a model sees the same T step after step.
  if (!mask_.defined() || mask_.size(0) != T) {
    mask_ = Tensor::zeros({T, T});
    float* m = mask_.data();
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = i + 1; j < T; ++j) m[i * T + j] = -std::numeric_limits<float>::infinity();
  }
  return mask_;
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  NL_CHECK(x.dim() == 3 && x.size(2) == d_model && x.size(0) > 0 && x.size(1) > 0, name(),
           ": expected input [B, T, ", d_model, "], got ", x.shape());
  const int64_t B = x.size(0), T = x.size(1), hd = d_model / heads;
  // [B, T, 3D] -> [B, T, 3, heads, hd] -> [3, B, heads, T, hd]: one copy gives q, k and v
  // each contiguous per head, the layout the batched matmuls want.
  Tensor qkv_heads = qkv->forward(x).view({B, T, 3, heads, hd}).permute({2, 0, 3, 1, 4}).contiguous();
  Tensor q = qkv_heads.select(0, 0), k = qkv_heads.select(0, 1), v = qkv_heads.select(0, 2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  Tensor scores = add(mul(matmul(q, k.transpose(-2, -1)), scale), causal_mask(T));  // [B, heads, T, T]
  Tensor y = matmul(softmax(scores, -1), v);                                         // [B, heads, T, hd]
  return proj->forward(y.transpose(1, 2).reshape({B, T, d_model}));
}

std::string CausalSelfAttention::name() const {
  return fmt::format("CausalSelfAttention(d={}, heads={})", d_model, heads);
}

}  // namespace nl
