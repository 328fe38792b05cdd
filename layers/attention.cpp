// normlab layers: causal multi-head self-attention. See attention.hpp.
#include "layers/attention.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/autograd.hpp"
#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"

namespace nl {

Tensor causal_attention(const Tensor& qkv, int64_t heads) {
  NL_CHECK(qkv.dim() == 3 && heads > 0 && qkv.size(2) % (3 * heads) == 0 && qkv.size(1) > 0, "causal_attention: ",
           "expected qkv [B, T, 3D] with D divisible by heads=", heads, ", got ", qkv.shape());
  const int64_t B = qkv.size(0), T = qkv.size(1), D = qkv.size(2) / 3, hd = D / heads, D3 = 3 * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  Tensor QKV = qkv.detach().contiguous();
  Tensor probs = Tensor::empty({B, heads, T, T});  // softmax rows, zeros above the diagonal
  Tensor y = Tensor::empty({B, T, D});
  const float* pq = QKV.data();
  float *pp = probs.data(), *py = y.data();
  // Each (batch, head) pair owns its probs block and its hd columns of y: no shared writes.
  parallel_for(B * heads, 4, [&](int64_t begin, int64_t end) {
    const KernelTable& k = kernels();
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / heads, h = bh % heads;
      const float* q = pq + b * T * D3 + h * hd;  // row i at q + i * D3
      const float *kk = q + D, *v = q + 2 * D;
      float* p = pp + bh * T * T;
      gemm_raw(false, true, T, T, hd, q, D3, kk, D3, 0.0f, p, T);  // scores q k^T
      for (int64_t i = 0; i < T; ++i) {  // causal softmax of row i over j <= i
        float* row = p + i * T;
        k.mul_scalar(row, scale, row, i + 1);
        const float m = k.max(row, i + 1);
        const float inv = static_cast<float>(1.0 / k.exp_shift_sum(row, m, row, i + 1));
        k.mul_scalar(row, inv, row, i + 1);
        std::fill(row + i + 1, row + T, 0.0f);
      }
      gemm_raw(false, false, T, hd, T, p, T, v, D3, 0.0f, py + b * T * D + h * hd, D);  // P v
    }
  });
  return record(y, "causal_attention", {qkv}, [qkv, QKV, probs, B, T, D, hd, heads, scale](const Tensor& grad) {
    if (!qkv.requires_grad()) return;
    Tensor dy = grad.contiguous();
    const int64_t D3 = 3 * D;
    Tensor dqkv = Tensor::empty({B, T, D3});
    Tensor ds_all = Tensor::empty({B * heads, T, T});  // scratch: dP, then dS, per pair
    const float *pq = QKV.data(), *pp = probs.data(), *pdy = dy.data();
    float *pd = dqkv.data(), *pds = ds_all.data();
    parallel_for(B * heads, 4, [&](int64_t begin, int64_t end) {
      for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / heads, h = bh % heads;
        const float* q = pq + b * T * D3 + h * hd;
        const float *kk = q + D, *v = q + 2 * D;
        const float* p = pp + bh * T * T;
        const float* dyh = pdy + b * T * D + h * hd;  // rows of ld D
        float* dq = pd + b * T * D3 + h * hd;
        float *dk = dq + D, *dv = dq + 2 * D;
        float* ds = pds + bh * T * T;
        gemm_raw(false, true, T, T, hd, dyh, D, v, D3, 0.0f, ds, T);  // dP = dY V^T
        for (int64_t i = 0; i < T; ++i) {  // softmax backward, row i (j <= i; zero above)
          const float* pr = p + i * T;
          float* dr = ds + i * T;
          float dot = 0.0f;
          for (int64_t j = 0; j <= i; ++j) dot += pr[j] * dr[j];
          for (int64_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot) * scale;
          std::fill(dr + i + 1, dr + T, 0.0f);
        }
        gemm_raw(false, false, T, hd, T, ds, T, kk, D3, 0.0f, dq, D3);  // dQ = dS K
        gemm_raw(true, false, T, hd, T, ds, T, q, D3, 0.0f, dk, D3);    // dK = dS^T Q
        gemm_raw(true, false, T, hd, T, p, T, dyh, D, 0.0f, dv, D3);    // dV = P^T dY
      }
    });
    accumulate_grad(qkv, dqkv);
  });
}

CausalSelfAttention::CausalSelfAttention(int64_t d, int64_t h, Generator& gen) : d_model(d), heads(h) {
  NL_CHECK(d > 0 && h > 0 && d % h == 0, "CausalSelfAttention: heads=", h, " must divide d_model=", d);
  qkv = register_module("qkv", std::make_shared<Linear>(d, 3 * d, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(d, d, true, gen));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  NL_CHECK(x.dim() == 3 && x.size(2) == d_model && x.size(0) > 0 && x.size(1) > 0, name(),
           ": expected input [B, T, ", d_model, "], got ", x.shape());
  return proj->forward(causal_attention(qkv->forward(x), heads));
}

std::string CausalSelfAttention::name() const {
  return fmt::format("CausalSelfAttention(d={}, heads={})", d_model, heads);
}

}  // namespace nl
