// normlab norms: EvoNorm-S0, fused kernel and the primitive-op reference, and the checks
// both EvoNorms share. The math and the names used below are in evonorm.hpp.
#include "layers/norm/evonorm.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "core/kernels/kernels.hpp"
#include "core/parallel.hpp"
#include "layers/norm/batch_stat_norm.hpp"  // bn_detail::channel_shape
#include "layers/norm/kernels/evonorm_kernels.hpp"
#include "layers/norm/kernels/row_norm_kernels.hpp"  // kMinValuesPerThread

namespace nl {

namespace evonorm_detail {

void check_input(const Tensor& x, int64_t C, const std::string& layer) {
  NL_CHECK((x.dim() == 4 || x.dim() == 2) && x.size(1) == C && x.numel() > 0, layer, ": expected input [N, ", C,
           ", H, W] or [N, ", C, "], got shape ", x.shape());
}

void check_params(const Tensor& x, const std::vector<Tensor>& params, const char* layer) {
  NL_CHECK(x.dim() == 4 || x.dim() == 2, layer, ": expected input [N, C, H, W] or [N, C], got shape ", x.shape());
  for (const Tensor& p : params)
    NL_CHECK(p.defined() && p.shape() == Shape{x.size(1)}, layer, ": parameter of shape ",
             p.defined() ? p.shape() : Shape{}, " for an input of shape ", x.shape());
}

// Biased variance of x over `dims` (keepdim), from primitive ops.
Tensor biased_var(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor d = x - mean(x, dims, true);
  return mean(d * d, dims, true);
}

}  // namespace evonorm_detail

// ================================================================ EvoNorm-S0, fused

// y: [N, C, L]; mean (double), rstd: [N, G]; gamma/beta/v: [C].
static void s0_forward(float* y, double* mean, float* rstd, const float* x, const float* gamma, const float* beta,
                       const float* v, int64_t N, int64_t C, int64_t L, int64_t G, float eps) {
  const EvoNormKernels& k = evonorm_kernels();
  const KernelTable& kt = kernels();
  const int64_t K = C / G, M = K * L;
  parallel_for(N * G, std::max<int64_t>(1, kMinValuesPerThread / M), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {  // row = n * G + g
      const int64_t g = row % G;
      double var;
      k.moments(x + row * M, M, &mean[row], &var);
      rstd[row] = static_cast<float>(1.0 / std::sqrt(var + eps));
      for (int64_t j = 0; j < K; ++j) {
        const int64_t c = g * K + j;
        const float* xp = x + row * M + j * L;
        float* yp = y + row * M + j * L;
        kt.mul_scalar(xp, v[c], yp, L);  // s = sigmoid(v x), built in y
        kt.sigmoid(yp, yp, L);
        k.s0_forward(xp, yp, rstd[row] * gamma[c], beta[c], yp, L);
      }
    }
  });
}

// dx: [N, C, L] (assigned; null = skip); dgamma/dbeta/dv: [C] (accumulated).
static void s0_backward(float* dx, float* dgamma, float* dbeta, float* dv, const float* dy, const float* x,
                        const float* gamma, const float* v, const double* mean, const float* rstd, int64_t N,
                        int64_t C, int64_t L, int64_t G) {
  const EvoNormKernels& k = evonorm_kernels();
  const KernelTable& kt = kernels();
  const int64_t K = C / G, M = K * L;
  std::vector<float> sum_dy(N * C), sum_dy_num(N * C), sum_dy_x2ds(N * C);  // per (n, c)
  parallel_for(N * G, std::max<int64_t>(1, kMinValuesPerThread / M), [&](int64_t begin, int64_t end) {
    std::vector<float> s(M);  // sigmoid(v x) of the current row, recomputed
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / G, g = row % G;
      double sum_g_num = 0.0;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t c = g * K + j, nc = n * C + c, off = row * M + j * L;
        kt.mul_scalar(x + off, v[c], s.data() + j * L, L);
        kt.sigmoid(s.data() + j * L, s.data() + j * L, L);
        k.s0_backward_sums(dy + off, x + off, s.data() + j * L, L, &sum_dy[nc], &sum_dy_num[nc], &sum_dy_x2ds[nc]);
        sum_g_num += static_cast<double>(gamma[c]) * sum_dy_num[nc];
      }
      if (!dx) continue;
      const double rs = rstd[row];
      const float B = static_cast<float>(-rs * rs * rs * sum_g_num / static_cast<double>(M));
      const float center = static_cast<float>(mean[row]);
      const float c0 = static_cast<float>(-B * (mean[row] - center));
      for (int64_t j = 0; j < K; ++j) {
        const int64_t c = g * K + j, off = row * M + j * L;
        k.s0_backward_dx(dy + off, x + off, s.data() + j * L, rstd[row] * gamma[c], v[c], B, center, c0, dx + off, L);
      }
    }
  });
  for (int64_t n = 0; n < N; ++n) {  // fixed order over n: deterministic
    for (int64_t c = 0; c < C; ++c) {
      const int64_t nc = n * C + c;
      const float rs = rstd[n * G + c / K];
      if (dgamma) dgamma[c] += rs * sum_dy_num[nc];
      if (dbeta) dbeta[c] += sum_dy[nc];
      if (dv) dv[c] += rs * gamma[c] * sum_dy_x2ds[nc];
    }
  }
}

Tensor evonorm_s0(const Tensor& x_in, int64_t G, const Tensor& weight, const Tensor& bias, const Tensor& v,
                  float eps) {
  evonorm_detail::check_params(x_in, {weight, bias, v}, "EvoNormS0");
  const int64_t N = x_in.size(0), C = x_in.size(1);
  NL_CHECK(G >= 1 && C % G == 0, "EvoNormS0: groups=", G, " must divide num_channels=", C);
  const Tensor x = x_in.contiguous();
  const int64_t L = x.numel() / std::max<int64_t>(1, N * C);
  NL_CHECK(x.numel() > 0, "EvoNormS0: input of shape ", x.shape(), " has no elements");
  Tensor y = Tensor::empty(x.shape()), rstd = Tensor::empty({N, G});
  auto mean = std::make_shared<std::vector<double>>(N * G);
  s0_forward(y.data(), mean->data(), rstd.data(), x.data(), weight.data(), bias.data(), v.data(), N, C, L, G, eps);
  const Tensor xd = x.detach();
  return record(y, "evonorm_s0", {x, weight, bias, v}, [=](const Tensor& gy) {
    const Tensor dy = gy.contiguous();
    Tensor dx = x.requires_grad() ? Tensor::empty(x.shape()) : Tensor();
    Tensor dw = Tensor::zeros({C}), db = Tensor::zeros({C}), dvv = Tensor::zeros({C});
    s0_backward(dx.defined() ? dx.data() : nullptr, dw.data(), db.data(), dvv.data(), dy.data(), xd.data(),
                weight.data(), v.data(), mean->data(), rstd.data(), N, C, L, G);
    if (dx.defined()) accumulate_grad(x, dx);
    accumulate_grad(weight, dw);  // accumulate_grad skips tensors that do not require grad
    accumulate_grad(bias, db);
    accumulate_grad(v, dvv);
  });
}

// ================================================================ EvoNorm-S0, layer

EvoNormS0::EvoNormS0(int64_t C, int64_t G, float eps_) : num_features(C), groups(G), eps(eps_) {
  NL_CHECK(G >= 1 && C >= 1 && C % G == 0, "EvoNormS0: groups=", G, " must divide num_channels=", C);
  weight = register_parameter("weight", Tensor::ones({C}));
  bias = register_parameter("bias", Tensor::zeros({C}));
  v = register_parameter("v", Tensor::ones({C}));
}

Tensor EvoNormS0::forward(const Tensor& x_in) {
  evonorm_detail::check_input(x_in, num_features, name());
  const Tensor x = report_norm_input(x_in);
  return report_norm_output(evonorm_s0(x, groups, weight, bias, v, eps));
}

Tensor EvoNormS0::reference_forward(const Tensor& x) {
  evonorm_detail::check_input(x, num_features, name());
  const Shape cs = bn_detail::channel_shape(num_features, x.dim());
  Tensor xg = x.reshape({x.size(0), groups, -1});                                   // [N, G, C/G * H * W]
  Tensor std = sqrt(evonorm_detail::biased_var(xg, {2}) + eps).expand({x.size(0), groups, xg.size(2)}).reshape(x.shape());
  Tensor num = x * sigmoid(v.reshape(cs) * x);
  return num / std * weight.reshape(cs) + bias.reshape(cs);
}

std::string EvoNormS0::name() const {
  return "EvoNormS0(" + std::to_string(num_features) + ", groups=" + std::to_string(groups) + ")";
}

}  // namespace nl
