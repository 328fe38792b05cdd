// normlab norms: LayerNorm. The math is in layer_norm.hpp; the row kernels are in
// kernels/row_norm_kernels_impl.inl (layer_norm_forward / layer_norm_backward).
#include "layers/norm/layer_norm.hpp"

#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl {

// x: [R, D], gamma/beta: [D] or null (relu: both given). Writes y: [R, D], mean/rstd: [R].
static void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                               const float* beta, int64_t R, int64_t D, float eps, bool relu) {
  const RowNormKernels& k = row_norm_kernels();
  parallel_for(R, std::max<int64_t>(1, kMinValuesPerThread / D), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float m, v;
      k.moments(x + r * D, D, &m, &v);
      mean[r] = m;
      rstd[r] = 1.0f / std::sqrt(v + eps);
      k.layer_norm_forward(x + r * D, gamma, beta, m, rstd[r], y + r * D, D, relu);
    }
  });
}

// dx: [R, D] (assigned, may be null), dgamma/dbeta: [D] (accumulated, may be null).
static void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                                const float* gamma, const float* beta, const float* mean, const float* rstd, int64_t R,
                                int64_t D, bool relu) {
  const RowNormKernels& k = row_norm_kernels();
  row_norm_backward_by_chunks(R, D, dgamma, dbeta, [&](int64_t r, int64_t rows, float* dg, float* db) {
    k.layer_norm_backward(dy + r * D, x + r * D, gamma, beta, mean + r, rstd + r, rows, dx ? dx + r * D : nullptr, dg,
                          db, D, relu);
  });
}

static int64_t check_normalized_shape(const Tensor& x, const Shape& ns, const char* layer) {
  const int64_t nd = static_cast<int64_t>(ns.size());
  bool ok = nd >= 1 && x.dim() >= nd;
  for (int64_t i = 0; ok && i < nd; ++i) ok = x.size(x.dim() - nd + i) == ns[i];
  NL_CHECK(ok, layer, ": input of shape ", x.shape(), " does not end with normalized_shape ", ns);
  return shape_numel(ns);
}

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  float eps, bool relu) {
  const int64_t D = check_normalized_shape(x_in, normalized_shape, "LayerNorm");
  NL_CHECK(!weight.defined() || weight.shape() == normalized_shape, "LayerNorm: weight of shape ", weight.shape(),
           " for normalized_shape ", normalized_shape);
  NL_CHECK(!bias.defined() || bias.shape() == normalized_shape, "LayerNorm: bias of shape ", bias.shape(),
           " for normalized_shape ", normalized_shape);
  NL_CHECK(!relu || (weight.defined() && bias.defined()), "LayerNorm: the fused ReLU needs weight and bias");
  const Tensor x = x_in.contiguous();
  const int64_t R = x.numel() / D;
  Tensor y = Tensor::empty(x.shape()), mean = Tensor::empty({R}), rstd = Tensor::empty({R});
  const float* gamma = weight.defined() ? weight.data() : nullptr;
  const float* beta = bias.defined() ? bias.data() : nullptr;
  layer_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), gamma, beta, R, D, eps, relu);

  const Tensor xd = x.detach();
  return record(y, relu ? "layer_norm_relu" : "layer_norm", {x, weight, bias},
                [x, weight, bias, xd, mean, rstd, R, D, relu](const Tensor& gy) {
    const Tensor dy = gy.contiguous();
    const bool need_dx = x.requires_grad();
    const bool need_dw = weight.defined() && weight.requires_grad();
    const bool need_db = bias.defined() && bias.requires_grad();
    Tensor dx = need_dx ? Tensor::empty(x.shape()) : Tensor();
    Tensor dw = need_dw ? Tensor::zeros(weight.shape()) : Tensor();
    Tensor db = need_db ? Tensor::zeros(bias.shape()) : Tensor();
    layer_norm_backward(need_dx ? dx.data() : nullptr, need_dw ? dw.data() : nullptr, need_db ? db.data() : nullptr,
                        dy.data(), xd.data(), weight.defined() ? weight.data() : nullptr,
                        bias.defined() ? bias.data() : nullptr, mean.data(), rstd.data(), R, D, relu);
    if (need_dx) accumulate_grad(x, dx);
    if (need_dw) accumulate_grad(weight, dw);
    if (need_db) accumulate_grad(bias, db);
  });
}

LayerNorm::LayerNorm(Shape ns, float eps_, bool affine) : normalized_shape(std::move(ns)), eps(eps_) {
  NL_CHECK(!normalized_shape.empty() && shape_numel(normalized_shape) > 0, "LayerNorm: normalized_shape ",
           normalized_shape, " must be non-empty with positive sizes");
  if (affine) {
    weight = register_parameter("weight", Tensor::ones(normalized_shape));
    bias = register_parameter("bias", Tensor::zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return normalize(x, false); }

Tensor LayerNorm::forward_relu(const Tensor& x) {
  // Two ops when an observer reads the output before the ReLU, and without affine (the fused
  // kernel has the affine case only).
  if (has_norm_observer() || !weight.defined()) return relu(normalize(x, false));
  return normalize(x, true);
}

Tensor LayerNorm::normalize(const Tensor& x_in, bool fused_relu) {
  const Tensor x = report_norm_input(x_in);
  return report_norm_output(layer_norm(x, normalized_shape, weight, bias, eps, fused_relu));
}

Tensor LayerNorm::reference_forward(const Tensor& x) {
  check_normalized_shape(x, normalized_shape, "LayerNorm");
  std::vector<int64_t> dims;
  for (int64_t i = x.dim() - static_cast<int64_t>(normalized_shape.size()); i < x.dim(); ++i) dims.push_back(i);
  Tensor d = x - mean(x, dims, true);
  Tensor var = mean(d * d, dims, true);  // biased, as PyTorch normalizes
  Tensor y = d * rsqrt(var + eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

std::string LayerNorm::name() const { return "LayerNorm(" + shape_str(normalized_shape) + ")"; }

}  // namespace nl
