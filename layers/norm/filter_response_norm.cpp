// normlab norms: FRN + TLU. The math is in filter_response_norm.hpp.
#include "layers/norm/filter_response_norm.hpp"

#include <cmath>
#include <vector>

#include "core/parallel.hpp"
#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl {

// z: [N, C, L], r: [N, C]; gamma/beta/tau: [C].
static void frn_forward(float* z, float* r, const float* x, const float* gamma, const float* beta, const float* tau,
                        int64_t N, int64_t C, int64_t L, float eps) {
  const RowNormKernels& k = row_norm_kernels();
  parallel_for(N * C, std::max<int64_t>(1, kMinValuesPerThread / L), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      r[p] = 1.0f / std::sqrt(k.mean_square(x + p * L, L) + eps);
      k.scale_shift_max(x + p * L, gamma[c] * r[p], beta[c], tau[c], z + p * L, L);
    }
  });
}

// dx: [N, C, L] (assigned, null = skip); dgamma/dbeta/dtau: [C] (accumulated, null = skip).
static void frn_backward(float* dx, float* dgamma, float* dbeta, float* dtau, const float* dz, const float* x,
                         const float* gamma, const float* beta, const float* tau, const float* r, int64_t N,
                         int64_t C, int64_t L) {
  const RowNormKernels& k = row_norm_kernels();
  std::vector<float> s_dy(N * C), s_dyx(N * C), s_dtau(N * C);
  parallel_for(N * C, std::max<int64_t>(1, kMinValuesPerThread / L), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      const float a = gamma[c] * r[p];
      k.frn_backward_sums(dz + p * L, x + p * L, a, beta[c], tau[c], L, &s_dy[p], &s_dyx[p], &s_dtau[p]);
      if (dx) {
        const float B = -gamma[c] * r[p] * r[p] * r[p] * s_dyx[p] / static_cast<float>(L);
        k.frn_backward_dx(dz + p * L, x + p * L, a, beta[c], tau[c], a, B, dx + p * L, L);
      }
    }
  });
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t p = n * C + c;
      if (dgamma) dgamma[c] += r[p] * s_dyx[p];
      if (dbeta) dbeta[c] += s_dy[p];
      if (dtau) dtau[c] += s_dtau[p];
    }
}

static void check_frn(const Tensor& x, int64_t C, const char* what) {
  NL_CHECK((x.dim() == 4 || x.dim() == 2) && x.size(1) == C, what, ": expected input [N, ", C, ", H, W] or [N, ",
           C, "], got shape ", x.shape());
}

Tensor filter_response_norm(const Tensor& x_in, const Tensor& weight, const Tensor& bias, const Tensor& tau,
                            float eps) {
  NL_CHECK(weight.defined() && bias.defined() && tau.defined(), "FilterResponseNorm: weight, bias and tau required");
  const int64_t C = weight.numel();
  check_frn(x_in, C, "FilterResponseNorm");
  const Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), L = x.numel() / std::max<int64_t>(1, N * C);
  Tensor z = Tensor::empty(x.shape()), r = Tensor::empty({N, C});
  frn_forward(z.data(), r.data(), x.data(), weight.data(), bias.data(), tau.data(), N, C, L, eps);
  const Tensor xd = x.detach();
  return record(z, "filter_response_norm", {x, weight, bias, tau}, [=](const Tensor& gz) {
    const Tensor dz = gz.contiguous();
    Tensor dx = x.requires_grad() ? Tensor::empty(x.shape()) : Tensor();
    Tensor dw = Tensor::zeros({C}), db = Tensor::zeros({C}), dt = Tensor::zeros({C});
    frn_backward(dx.defined() ? dx.data() : nullptr, dw.data(), db.data(), dt.data(), dz.data(), xd.data(),
                 weight.data(), bias.data(), tau.data(), r.data(), N, C, L);
    if (dx.defined()) accumulate_grad(x, dx);
    accumulate_grad(weight, dw);  // accumulate_grad skips tensors that do not require grad
    accumulate_grad(bias, db);
    accumulate_grad(tau, dt);
  });
}

FilterResponseNorm::FilterResponseNorm(int64_t C, float eps_) : num_features(C), eps(eps_) {
  NL_CHECK(C >= 1, "FilterResponseNorm: num_features must be positive, got ", C);
  weight = register_parameter("weight", Tensor::ones({C}));
  bias = register_parameter("bias", Tensor::zeros({C}));
  tau = register_parameter("tau", Tensor::zeros({C}));
}

Tensor FilterResponseNorm::forward(const Tensor& x_in) {
  check_frn(x_in, num_features, "FilterResponseNorm");
  const Tensor x = report_norm_input(x_in);
  return report_norm_output(filter_response_norm(x, weight, bias, tau, eps));
}

Tensor FilterResponseNorm::reference_forward(const Tensor& x) {
  check_frn(x, num_features, "FilterResponseNorm");
  Shape cshape(x.dim(), 1);
  cshape[1] = num_features;
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Tensor nu2 = dims.empty() ? x * x : mean(x * x, dims, true);
  Tensor y = weight.reshape(cshape) * x * rsqrt(nu2 + eps) + bias.reshape(cshape);
  Tensor t = tau.reshape(cshape);
  return relu(y - t) + t;  // max(y, tau)
}

std::string FilterResponseNorm::name() const { return "FilterResponseNorm(" + std::to_string(num_features) + ")"; }

}  // namespace nl
