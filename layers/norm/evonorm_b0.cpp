// normlab norms: EvoNorm-B0, fused kernel and the primitive-op reference. The math and the
// names used below are in evonorm.hpp.
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

// ================================================================ EvoNorm-B0, fused

namespace {
// Statistics saved by the forward for the backward. [N, C] per plane, [C] per channel.
struct B0Stats {
  std::vector<double> inst_mean;   // [N, C]
  std::vector<float> inst_std;     // [N, C]
  std::vector<double> batch_mean;  // [C] (training only)
  std::vector<float> batch_std;    // [C]
};
}  // namespace

// y: [N, C, L]; batch_var: [C] (training: biased batch variance, written; may be null);
// running_var: [C] (eval).
static void b0_forward(float* y, B0Stats& st, float* batch_var, const float* x, const float* gamma,
                       const float* beta, const float* v, const float* running_var, int64_t N, int64_t C, int64_t L,
                       bool training, float eps) {
  const EvoNormKernels& k = evonorm_kernels();
  const int64_t P = N * C, grain = std::max<int64_t>(1, kMinValuesPerThread / L);
  st.inst_mean.assign(P, 0.0);
  st.inst_std.assign(P, 0.0f);
  st.batch_std.assign(C, 0.0f);
  std::vector<double> inst_var(P);
  if (!training)
    for (int64_t c = 0; c < C; ++c) st.batch_std[c] = static_cast<float>(std::sqrt(double{running_var[c]} + eps));
  // Pass 1: per-plane moments (in eval also the output, while the plane is in cache).
  parallel_for(P, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      k.moments(x + p * L, L, &st.inst_mean[p], &inst_var[p]);
      st.inst_std[p] = static_cast<float>(std::sqrt(inst_var[p] + eps));
      const int64_t c = p % C;
      if (!training) k.b0_forward(x + p * L, st.batch_std[c], v[c], st.inst_std[p], gamma[c], beta[c], y + p * L, L);
    }
  });
  if (!training) return;
  // Batch moments per channel, merged from the planes' in order of n (Chan's formula).
  st.batch_mean.assign(C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    double mu = 0.0;
    for (int64_t n = 0; n < N; ++n) mu += st.inst_mean[n * C + c];
    mu /= static_cast<double>(N);
    double m2 = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const double d = st.inst_mean[n * C + c] - mu;
      m2 += inst_var[n * C + c] + d * d;  // times L, divided by L below
    }
    const double var = m2 / static_cast<double>(N);
    st.batch_mean[c] = mu;
    st.batch_std[c] = static_cast<float>(std::sqrt(var + eps));
    if (batch_var) batch_var[c] = static_cast<float>(var);
  }
  // Pass 2: the output.
  parallel_for(P, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      k.b0_forward(x + p * L, st.batch_std[c], v[c], st.inst_std[p], gamma[c], beta[c], y + p * L, L);
    }
  });
}

// dx: [N, C, L] (assigned; null = skip); dgamma/dbeta/dv: [C] (accumulated).
static void b0_backward(float* dx, float* dgamma, float* dbeta, float* dv, const float* dy, const float* x,
                        const float* gamma, const float* v, const B0Stats& st, int64_t N, int64_t C, int64_t L,
                        bool training) {
  const EvoNormKernels& k = evonorm_kernels();
  const int64_t P = N * C, grain = std::max<int64_t>(1, kMinValuesPerThread / L);
  // sums[p]: sum_dy, sum_dy_xden, d_inst_std, d_v, d_batch_std of plane p
  std::vector<float> sums(5 * P);
  parallel_for(P, grain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % C;
      k.b0_backward_sums(dy + p * L, x + p * L, st.batch_std[c], v[c], st.inst_std[p], gamma[c], L, &sums[5 * p]);
    }
  });
  if (dx) {
    // cb[c] = d_batch_std[c] / (M * batch_std[c]), d_batch_std summed over n in order.
    std::vector<float> cb(C, 0.0f), batch_center(C, 0.0f);
    std::vector<double> cb_lo(C, 0.0);  // cb * (batch_mean - batch_center), folded into c0
    if (training) {
      const double M = static_cast<double>(N * L);
      for (int64_t c = 0; c < C; ++c) {
        double d_batch_std = 0.0;
        for (int64_t n = 0; n < N; ++n) d_batch_std += sums[5 * (n * C + c) + 4];
        cb[c] = static_cast<float>(d_batch_std / (M * st.batch_std[c]));
        batch_center[c] = static_cast<float>(st.batch_mean[c]);
        cb_lo[c] = double{cb[c]} * (st.batch_mean[c] - batch_center[c]);
      }
    }
    parallel_for(P, grain, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t c = p % C;
        const float ci = static_cast<float>(sums[5 * p + 2] / (static_cast<double>(L) * st.inst_std[p]));
        const float inst_center = static_cast<float>(st.inst_mean[p]);
        const float c0 = static_cast<float>(-(ci * (st.inst_mean[p] - inst_center) + cb_lo[c]));
        k.b0_backward_dx(dy + p * L, x + p * L, st.batch_std[c], v[c], st.inst_std[p], gamma[c], ci, inst_center,
                         cb[c], batch_center[c], c0, dx + p * L, L);
      }
    });
  }
  for (int64_t n = 0; n < N; ++n) {  // fixed order over n: deterministic
    for (int64_t c = 0; c < C; ++c) {
      const float* s = &sums[5 * (n * C + c)];
      if (dbeta) dbeta[c] += s[0];
      if (dgamma) dgamma[c] += s[1];
      if (dv) dv[c] += s[3];
    }
  }
}

Tensor evonorm_b0(const Tensor& x_in, const Tensor& weight, const Tensor& bias, const Tensor& v,
                  const Tensor& running_var, bool training, float eps, Tensor* batch_var_out) {
  evonorm_detail::check_params(x_in, {weight, bias, v}, "EvoNormB0");
  const int64_t N = x_in.size(0), C = x_in.size(1);
  const Tensor x = x_in.contiguous();
  const int64_t L = x.numel() / std::max<int64_t>(1, N * C);
  NL_CHECK(x.numel() > 0, "EvoNormB0: input of shape ", x.shape(), " has no elements");
  if (training) bn_detail::check_more_than_one_value(N * L, "EvoNormB0", x);
  NL_CHECK(training || (running_var.defined() && running_var.shape() == Shape{C}),
           "EvoNormB0: eval needs running_var of shape [", C, "]");
  const Tensor rv = training ? Tensor() : running_var.contiguous();
  Tensor y = Tensor::empty(x.shape());
  Tensor batch_var = training ? Tensor::empty({C}) : Tensor();
  auto st = std::make_shared<B0Stats>();
  b0_forward(y.data(), *st, training ? batch_var.data() : nullptr, x.data(), weight.data(), bias.data(), v.data(),
             training ? nullptr : rv.data(), N, C, L, training, eps);
  if (batch_var_out) *batch_var_out = batch_var;
  const Tensor xd = x.detach();
  return record(y, "evonorm_b0", {x, weight, bias, v}, [=](const Tensor& gy) {
    const Tensor dy = gy.contiguous();
    Tensor dx = x.requires_grad() ? Tensor::empty(x.shape()) : Tensor();
    Tensor dw = Tensor::zeros({C}), db = Tensor::zeros({C}), dvv = Tensor::zeros({C});
    b0_backward(dx.defined() ? dx.data() : nullptr, dw.data(), db.data(), dvv.data(), dy.data(), xd.data(),
                weight.data(), v.data(), *st, N, C, L, training);
    if (dx.defined()) accumulate_grad(x, dx);
    accumulate_grad(weight, dw);
    accumulate_grad(bias, db);
    accumulate_grad(v, dvv);
  });
}

// ================================================================ EvoNorm-B0, layer

EvoNormB0::EvoNormB0(int64_t C, float eps_, float momentum_) : num_features(C), eps(eps_), momentum(momentum_) {
  NL_CHECK(C >= 1, "EvoNormB0: num_features must be positive, got ", C);
  weight = register_parameter("weight", Tensor::ones({C}));
  bias = register_parameter("bias", Tensor::zeros({C}));
  v = register_parameter("v", Tensor::ones({C}));
  running_var = register_buffer("running_var", Tensor::ones({C}));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::scalar(0.0f));
}

void EvoNormB0::update_running_var(const float* batch_var, int64_t M) {
  std::vector<float> var_unbiased(num_features);
  for (int64_t c = 0; c < num_features; ++c) var_unbiased[c] = bn_detail::unbiased_var(batch_var[c], M);
  bn_detail::momentum_update(momentum, num_batches_tracked.data(), num_features, nullptr, nullptr,
                             var_unbiased.data(), running_var.data());
}

Tensor EvoNormB0::forward(const Tensor& x_in) {
  evonorm_detail::check_input(x_in, num_features, name());
  const int64_t M = x_in.numel() / num_features;
  if (is_training()) bn_detail::check_more_than_one_value(M, name(), x_in);
  const Tensor x = report_norm_input(x_in);
  Tensor batch_var;
  Tensor y = evonorm_b0(x, weight, bias, v, running_var, is_training(), eps, &batch_var);
  if (is_training()) update_running_var(batch_var.data(), M);
  return report_norm_output(y);
}

Tensor EvoNormB0::reference_forward(const Tensor& x) {
  evonorm_detail::check_input(x, num_features, name());
  const Shape cs = bn_detail::channel_shape(num_features, x.dim());
  std::vector<int64_t> batch_dims{0}, inst_dims;
  for (int64_t d = 2; d < x.dim(); ++d) {
    batch_dims.push_back(d);
    inst_dims.push_back(d);
  }
  Tensor batch_std;
  if (is_training()) {
    const int64_t M = x.numel() / num_features;
    bn_detail::check_more_than_one_value(M, name(), x);
    Tensor var = evonorm_detail::biased_var(x, batch_dims);  // [1, C, 1, 1]
    batch_std = sqrt(var + eps);
    NoGradGuard no_grad;
    update_running_var(var.contiguous().data(), M);
  } else {
    batch_std = sqrt(running_var.reshape(cs) + eps);
  }
  // instance_std: with no spatial dims (an [N, C] input) the instance variance is 0.
  Tensor inst_std = inst_dims.empty() ? sqrt(x * 0.0f + eps) : sqrt(evonorm_detail::biased_var(x, inst_dims) + eps);
  Tensor b = v.reshape(cs) * x + inst_std;
  Tensor den = b + relu(batch_std - b);  // max(batch_std, b)
  return x / den * weight.reshape(cs) + bias.reshape(cs);
}

std::string EvoNormB0::name() const { return "EvoNormB0(" + std::to_string(num_features) + ")"; }

}  // namespace nl
