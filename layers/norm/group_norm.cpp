// normlab norms: GroupNorm. The math is in group_norm.hpp.
#include "layers/norm/group_norm.hpp"

#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl {

void group_norm_forward(float* y, float* mean, float* rstd, float* var, const float* x, const float* gamma,
                        const float* beta, int64_t N, int64_t C, int64_t L, int64_t G, float eps, bool relu) {
  const RowNormKernels& k = row_norm_kernels();
  const int64_t K = C / G, M = K * L;
  parallel_for(N * G, std::max<int64_t>(1, kMinValuesPerThread / M), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {  // row = n * G + g
      const int64_t g = row % G;
      const float* xr = x + row * M;
      float m, v;
      k.moments(xr, M, &m, &v);
      const float rs = 1.0f / std::sqrt(v + eps);
      mean[row] = m;
      rstd[row] = rs;
      if (var) var[row] = v;
      for (int64_t j = 0; j < K; ++j) {
        const int64_t c = g * K + j;
        const float a = rs * (gamma ? gamma[c] : 1.0f);
        const float b = (beta ? beta[c] : 0.0f) - m * a;
        k.scale_shift(xr + j * L, a, b, y + row * M + j * L, L, relu);
      }
    }
  });
}

void group_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* gamma, const float* beta, const float* mean, const float* rstd, int64_t N,
                         int64_t C, int64_t L, int64_t G, bool relu) {
  const RowNormKernels& k = row_norm_kernels();
  const int64_t K = C / G, M = K * L;
  std::vector<float> db(N * C), ds(N * C);  // per (n, c): sum dy, sum dy * (x - mean)
  parallel_for(N * G, std::max<int64_t>(1, kMinValuesPerThread / M), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / G, g = row % G;
      const float m = mean[row], rs = rstd[row];
      double sum_g = 0.0, sum_gx = 0.0;
      // With the ReLU fused, dy is masked where the forward's x * a + b was <= 0: a and b
      // recomputed by the forward's expressions (the same bits).
      const auto relu_ab = [&](int64_t c) {
        const float a = rs * (gamma ? gamma[c] : 1.0f);
        return std::pair{a, (beta ? beta[c] : 0.0f) - m * a};
      };
      for (int64_t j = 0; j < K; ++j) {
        const int64_t c = g * K + j, nc = n * C + c;
        const auto [ra, rb] = relu_ab(c);
        k.sums_dy_dyx(dy + row * M + j * L, x + row * M + j * L, relu ? &ra : nullptr, relu ? &rb : nullptr, m, L,
                      &db[nc], &ds[nc]);
        const float gm = gamma ? gamma[c] : 1.0f;
        sum_g += static_cast<double>(gm) * db[nc];
        sum_gx += static_cast<double>(gm) * ds[nc];
      }
      if (!dx) continue;
      const float dnorm_mean = static_cast<float>(sum_g / M);
      const float dnorm_norm_mean = static_cast<float>(rs * sum_gx / M);
      for (int64_t j = 0; j < K; ++j) {
        const int64_t c = g * K + j;
        const auto [ra, rb] = relu_ab(c);
        k.affine_backward(dy + row * M + j * L, x + row * M + j * L, relu ? &ra : nullptr, relu ? &rb : nullptr, ra,
                          -rs * rs * dnorm_norm_mean, m, -rs * dnorm_mean, dx + row * M + j * L, L);
      }
    }
  });
  for (int64_t n = 0; n < N; ++n) {  // fixed order over n: deterministic
    for (int64_t c = 0; c < C; ++c) {
      if (dgamma) dgamma[c] += ds[n * C + c] * rstd[n * G + c / K];
      if (dbeta) dbeta[c] += db[n * C + c];
    }
  }
}

Tensor group_norm(const Tensor& x_in, int64_t G, const Tensor& weight, const Tensor& bias, float eps,
                  Tensor* mean_out, Tensor* var_out, const char* layer, bool relu) {
  NL_CHECK(x_in.dim() >= 2, layer, ": expected input [N, C, *], got shape ", x_in.shape());
  const int64_t N = x_in.size(0), C = x_in.size(1);
  NL_CHECK(G >= 1 && C % G == 0, layer, ": num_groups=", G, " must divide num_channels=", C, " (input shape ",
           x_in.shape(), ")");
  NL_CHECK(!weight.defined() || weight.shape() == Shape{C}, layer, ": weight of shape ", weight.shape(),
           " for an input with C=", C, " (shape ", x_in.shape(), ")");
  NL_CHECK(!bias.defined() || bias.shape() == Shape{C}, layer, ": bias of shape ", bias.shape(),
           " for an input with C=", C, " (shape ", x_in.shape(), ")");
  const Tensor x = x_in.contiguous();
  const int64_t L = N * C == 0 ? 0 : x.numel() / (N * C);
  NL_CHECK(L > 0, layer, ": input of shape ", x.shape(), " has no elements to normalize");
  Tensor y = Tensor::empty(x.shape()), mean = Tensor::empty({N, G}), rstd = Tensor::empty({N, G});
  Tensor var = var_out ? Tensor::empty({N, G}) : Tensor();
  group_norm_forward(y.data(), mean.data(), rstd.data(), var_out ? var.data() : nullptr, x.data(),
                     weight.defined() ? weight.data() : nullptr, bias.defined() ? bias.data() : nullptr, N, C, L, G,
                     eps, relu);
  if (mean_out) *mean_out = mean;
  if (var_out) *var_out = var;

  const Tensor xd = x.detach();
  return record(y, relu ? "group_norm_relu" : "group_norm", {x, weight, bias}, [=](const Tensor& gy) {
    const Tensor dy = gy.contiguous();
    const bool need_dx = x.requires_grad();
    const bool need_dw = weight.defined() && weight.requires_grad();
    const bool need_db = bias.defined() && bias.requires_grad();
    Tensor dx = need_dx ? Tensor::empty(x.shape()) : Tensor();
    Tensor dw = need_dw ? Tensor::zeros({C}) : Tensor();
    Tensor db = need_db ? Tensor::zeros({C}) : Tensor();
    group_norm_backward(need_dx ? dx.data() : nullptr, need_dw ? dw.data() : nullptr, need_db ? db.data() : nullptr,
                        dy.data(), xd.data(), weight.defined() ? weight.data() : nullptr,
                        bias.defined() ? bias.data() : nullptr, mean.data(), rstd.data(), N, C, L, G, relu);
    if (need_dx) accumulate_grad(x, dx);
    if (need_dw) accumulate_grad(weight, dw);
    if (need_db) accumulate_grad(bias, db);
  });
}

GroupNorm::GroupNorm(int64_t G, int64_t C, float eps_, bool affine) : num_groups(G), num_channels(C), eps(eps_) {
  NL_CHECK(G >= 1 && C >= 1 && C % G == 0, "GroupNorm: num_groups=", G, " must divide num_channels=", C);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({C}));
    bias = register_parameter("bias", Tensor::zeros({C}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) { return normalize(x, false); }

Tensor GroupNorm::forward_relu(const Tensor& x) {
  if (has_norm_observer()) return relu(normalize(x, false));  // the observer reads the output before the ReLU
  return normalize(x, true);
}

Tensor GroupNorm::normalize(const Tensor& x_in, bool fused_relu) {
  NL_CHECK(x_in.dim() >= 2 && x_in.size(1) == num_channels, name(), ": expected input [N, ", num_channels,
           ", *], got shape ", x_in.shape());
  const Tensor x = report_norm_input(x_in);
  return report_norm_output(group_norm(x, num_groups, weight, bias, eps, nullptr, nullptr, "GroupNorm", fused_relu));
}

Tensor GroupNorm::reference_forward(const Tensor& x) {
  NL_CHECK(x.dim() >= 2 && x.size(1) == num_channels, name(), ": expected input [N, ", num_channels,
           ", *], got shape ", x.shape());
  Tensor xg = x.reshape({x.size(0), num_groups, -1});  // [N, G, K*L]
  Tensor d = xg - mean(xg, {2}, true);
  Tensor y = (d * rsqrt(mean(d * d, {2}, true) + eps)).reshape(x.shape());
  Shape cshape(x.dim(), 1);  // [1, C, 1, ...]
  cshape[1] = num_channels;
  if (weight.defined()) y = y * weight.reshape(cshape);
  if (bias.defined()) y = y + bias.reshape(cshape);
  return y;
}

std::string GroupNorm::name() const {
  return "GroupNorm(" + std::to_string(num_groups) + ", " + std::to_string(num_channels) + ")";
}

}  // namespace nl
