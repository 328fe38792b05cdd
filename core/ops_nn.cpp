// normlab core: embedding, dropout and the losses, with their gradients.
//
//   embedding:  y[i, :] = W[id_i, :]                dW[id_i, :] += dy[i, :]  (repeated ids add up)
//   dropout:    y = x * m / (1 - p),  m_i ~ Bernoulli(1 - p)      dx = dy * m / (1 - p)
//               (inverted dropout: evaluation needs no rescaling, so it is the identity)
//   cross_entropy, per row i with target t_i, C classes, smoothing eps:
//     log p_ic = x_ic - lse_i,   lse_i = m_i + log s_i,   m_i = max_c x_ic,   s_i = sum_c exp(x_ic - m_i)
//     p_ic = exp(x_ic - m_i) / s_i   (backward keeps m_i and s_i apart, as PyTorch does: lse_i
//       rounded to float loses its low bits when |x| is large, e.g. 6e-5 at |x| ~ 1000, and
//       exp(x - lse) carries that error into every probability)
//     loss_i = (1 - eps) (-log p_it) + eps * mean_c(-log p_ic)  = sum_c q_ic (-log p_ic)
//       with the smoothed target q_ic = (1 - eps) [c == t_i] + eps / C
//     loss = sum over kept rows of loss_i / (number of kept rows)   (rows with t_i == ignore_index
//       are dropped; if every row is, 0/0 = NaN as in PyTorch)
//     dloss/dx_ic = (p_ic - q_ic) / count for kept rows, 0 for ignored rows
//   mse_loss:   loss = mean (p - t)^2,  dp = 2 (p - t) / n,  dt = -dp
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "core/autograd.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"

namespace nl {

Tensor embedding(const Tensor& weight, const std::vector<int32_t>& ids, const Shape& ids_shape) {
  NL_CHECK(weight.dim() == 2, "embedding: weight must be 2-D [num, dim], got ", weight.shape());
  NL_CHECK(shape_numel(ids_shape) == static_cast<int64_t>(ids.size()), "embedding: ", ids.size(),
           " ids do not fill ids_shape ", ids_shape, " (weight ", weight.shape(), ")");
  const int64_t num = weight.size(0), dim = weight.size(1);
  for (size_t i = 0; i < ids.size(); ++i) {
    NL_CHECK(ids[i] >= 0 && ids[i] < num, "embedding: id ", ids[i], " at position ", i,
             " is out of range for a table of ", num, " rows (weight ", weight.shape(), ")");
  }
  Shape out_shape = ids_shape;
  out_shape.push_back(dim);
  Tensor wc = weight.detach().contiguous();
  Tensor y = Tensor::empty(out_shape);
  for (size_t i = 0; i < ids.size(); ++i) std::copy_n(wc.data() + ids[i] * dim, dim, y.data() + i * dim);
  return record(y, "embedding", {weight}, [weight, ids, dim](const Tensor& gy_in) {
    Tensor gy = gy_in.contiguous();
    Tensor dw = Tensor::zeros(weight.shape());
    // Sequential on purpose: repeated ids hit the same row, and order fixes the rounding.
    for (size_t i = 0; i < ids.size(); ++i) {
      float* row = dw.data() + ids[i] * dim;
      const float* g = gy.data() + i * dim;
      for (int64_t j = 0; j < dim; ++j) row[j] += g[j];
    }
    accumulate_grad(weight, dw);
  });
}

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  NL_CHECK(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got ", p, " (input ", x.shape(), ")");
  if (!training || p == 0.0f) return x;
  // mask holds 0 or 1/(1-p), so forward and backward are the same multiply.
  Tensor mask = Tensor::empty(x.shape());
  const float scale = 1.0f / (1.0f - p);
  float* pm = mask.data();
  for (int64_t i = 0; i < mask.numel(); ++i) pm[i] = gen.uniform() < p ? 0.0f : scale;
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape());
  const float* px = xc.data();
  float* py = y.data();
  for (int64_t i = 0; i < y.numel(); ++i) py[i] = px[i] * pm[i];
  return record(y, "dropout", {x}, [x, mask](const Tensor& gy) { accumulate_grad(x, mul(gy, mask)); });
}

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& targets, int32_t ignore_index,
                     float label_smoothing) {
  NL_CHECK(logits.dim() == 2, "cross_entropy: logits must be 2-D [N, C], got ", logits.shape(),
           " (flatten extra dims first)");
  const int64_t n = logits.size(0), classes = logits.size(1);
  NL_CHECK(static_cast<int64_t>(targets.size()) == n, "cross_entropy: logits ", logits.shape(), " need ", n,
           " targets, got ", targets.size());
  NL_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f, "cross_entropy: label_smoothing must be in [0, 1], got ",
           label_smoothing);
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = targets[i];
    if (t == ignore_index) continue;
    NL_CHECK(t >= 0 && t < classes, "cross_entropy: target ", t, " at row ", i, " is out of range for ", classes,
             " classes (logits ", logits.shape(), ")");
    ++count;
  }
  Tensor xc = logits.detach().contiguous();
  const float* px = xc.data();
  const double eps = label_smoothing;
  // Per-row max m_i and 1 / s_i (kept for backward) and loss; summed afterwards in row order.
  auto row_max = std::make_shared<std::vector<float>>(n);
  auto inv_sum_exp = std::make_shared<std::vector<float>>(n);
  std::vector<double> row_loss(n, 0.0);
  parallel_for(n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* row = px + i * classes;
      const float m = *std::max_element(row, row + classes);
      double sum_exp = 0.0, sum_x = 0.0;
      for (int64_t c = 0; c < classes; ++c) {
        sum_exp += std::exp(static_cast<double>(row[c] - m));
        sum_x += row[c];
      }
      const double l = m + std::log(sum_exp);
      (*row_max)[i] = m;
      (*inv_sum_exp)[i] = static_cast<float>(1.0 / sum_exp);
      if (targets[i] == ignore_index) continue;
      const double nll = l - row[targets[i]];
      const double smooth = l - sum_x / static_cast<double>(classes);  // mean_c(-log p_c)
      row_loss[i] = (1.0 - eps) * nll + eps * smooth;
    }
  });
  double total = 0.0;
  for (double l : row_loss) total += l;
  Tensor loss = Tensor::scalar(static_cast<float>(total / static_cast<double>(count)));  // 0/0 = NaN, like PyTorch

  return record(loss, "cross_entropy", {logits}, [logits, xc, targets, ignore_index, eps, count, row_max,
                                                  inv_sum_exp, classes](const Tensor& gy) {
    const int64_t n = logits.size(0);
    Tensor dx = Tensor::empty(logits.shape());
    const float* px = xc.data();
    float* pd = dx.data();
    const float scale = count > 0 ? gy.item() / static_cast<float>(count) : 0.0f;
    const float off = static_cast<float>(eps / static_cast<double>(classes));  // q off the target
    const float on = static_cast<float>(1.0 - eps) + off;                      // q at the target
    parallel_for(n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* d = pd + i * classes;
        if (targets[i] == ignore_index) {
          std::fill(d, d + classes, 0.0f);
          continue;
        }
        const float* row = px + i * classes;
        const float m = (*row_max)[i], inv_s = (*inv_sum_exp)[i];
        for (int64_t c = 0; c < classes; ++c) d[c] = (std::exp(row[c] - m) * inv_s - off) * scale;  // (p - q) / count
        d[targets[i]] -= (on - off) * scale;
      }
    });
    accumulate_grad(logits, dx);
  });
}

Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  NL_CHECK(prediction.shape() == target.shape(), "mse_loss: prediction ", prediction.shape(), " and target ",
           target.shape(), " must have the same shape");
  NL_CHECK(prediction.numel() > 0, "mse_loss: empty input ", prediction.shape());
  Tensor pc = prediction.detach().contiguous(), tc = target.detach().contiguous();
  Tensor diff = Tensor::empty(prediction.shape());
  const int64_t n = diff.numel();
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = pc.data()[i] - tc.data()[i];
    diff.data()[i] = d;
    total += static_cast<double>(d) * d;
  }
  Tensor loss = Tensor::scalar(static_cast<float>(total / static_cast<double>(n)));
  return record(loss, "mse_loss", {prediction, target}, [prediction, target, diff, n](const Tensor& gy) {
    Tensor dp = mul(diff, 2.0f * gy.item() / static_cast<float>(n));
    if (prediction.requires_grad()) accumulate_grad(prediction, dp);
    if (target.requires_grad()) accumulate_grad(target, neg(dp));
  });
}

}  // namespace nl
