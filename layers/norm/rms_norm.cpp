// normlab norms: RMSNorm. The math is in rms_norm.hpp; the row kernels are
// rms_norm_forward / rms_norm_backward in kernels/row_norm_kernels_impl.inl.
#include "layers/norm/rms_norm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl {

// x: [R, D], gamma: [D] or null -> y: [R, D], rstd: [R].
static void rms_norm_forward(float* y, float* rstd, const float* x, const float* gamma, int64_t R, int64_t D,
                             float eps) {
  const RowNormKernels& k = row_norm_kernels();
  parallel_for(R, std::max<int64_t>(1, kMinValuesPerThread / D), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      rstd[r] = 1.0f / std::sqrt(k.mean_square(x + r * D, D) + eps);
      k.rms_norm_forward(x + r * D, gamma, rstd[r], y + r * D, D);
    }
  });
}

// dx: [R, D] (assigned, may be null), dgamma: [D] (accumulated, may be null).
static void rms_norm_backward(float* dx, float* dgamma, const float* dy, const float* x, const float* gamma,
                              const float* rstd, int64_t R, int64_t D) {
  const RowNormKernels& k = row_norm_kernels();
  row_norm_backward_by_chunks(R, D, dgamma, nullptr, [&](int64_t r, int64_t rows, float* dg, float*) {
    k.rms_norm_backward(dy + r * D, x + r * D, gamma, rstd + r, rows, dx ? dx + r * D : nullptr, dg, D);
  });
}

static int64_t check_rms_shape(const Tensor& x, const Shape& ns) {
  const int64_t nd = static_cast<int64_t>(ns.size());
  bool ok = nd >= 1 && x.dim() >= nd;
  for (int64_t i = 0; ok && i < nd; ++i) ok = x.size(x.dim() - nd + i) == ns[i];
  NL_CHECK(ok, "RMSNorm: input of shape ", x.shape(), " does not end with normalized_shape ", ns);
  return shape_numel(ns);
}

Tensor rms_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight, float eps) {
  const int64_t D = check_rms_shape(x_in, normalized_shape);
  NL_CHECK(!weight.defined() || weight.shape() == normalized_shape, "RMSNorm: weight of shape ", weight.shape(),
           " for normalized_shape ", normalized_shape);
  const Tensor x = x_in.contiguous();
  const int64_t R = x.numel() / D;
  Tensor y = Tensor::empty(x.shape()), rstd = Tensor::empty({R});
  rms_norm_forward(y.data(), rstd.data(), x.data(), weight.defined() ? weight.data() : nullptr, R, D, eps);
  const Tensor xd = x.detach();
  return record(y, "rms_norm", {x, weight}, [x, weight, xd, rstd, R, D](const Tensor& gy) {
    const Tensor dy = gy.contiguous();
    const bool need_dx = x.requires_grad(), need_dw = weight.defined() && weight.requires_grad();
    Tensor dx = need_dx ? Tensor::empty(x.shape()) : Tensor();
    Tensor dw = need_dw ? Tensor::zeros(weight.shape()) : Tensor();
    rms_norm_backward(need_dx ? dx.data() : nullptr, need_dw ? dw.data() : nullptr, dy.data(), xd.data(),
                      weight.defined() ? weight.data() : nullptr, rstd.data(), R, D);
    if (need_dx) accumulate_grad(x, dx);
    if (need_dw) accumulate_grad(weight, dw);
  });
}

RMSNorm::RMSNorm(Shape ns, float eps_, bool affine) : normalized_shape(std::move(ns)), eps(eps_) {
  NL_CHECK(!normalized_shape.empty() && shape_numel(normalized_shape) > 0, "RMSNorm: normalized_shape ",
           normalized_shape, " must be non-empty with positive sizes");
  if (affine) weight = register_parameter("weight", Tensor::ones(normalized_shape));
}

Tensor RMSNorm::forward(const Tensor& x_in) {
  const Tensor x = report_norm_input(x_in);
  return report_norm_output(rms_norm(x, normalized_shape, weight, eps));
}

Tensor RMSNorm::reference_forward(const Tensor& x) {
  check_rms_shape(x, normalized_shape);
  std::vector<int64_t> dims;
  for (int64_t i = x.dim() - static_cast<int64_t>(normalized_shape.size()); i < x.dim(); ++i) dims.push_back(i);
  Tensor y = x * rsqrt(mean(x * x, dims, true) + eps);
  return weight.defined() ? y * weight : y;
}

std::string RMSNorm::name() const { return "RMSNorm(" + shape_str(normalized_shape) + ")"; }

}  // namespace nl
