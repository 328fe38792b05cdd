// normlab norms: InstanceNorm1d/2d. The math is in instance_norm.hpp; training mode runs
// group_norm's fused kernel with G = C.
#include "layers/norm/instance_norm.hpp"

#include <cmath>

#include "core/parallel.hpp"
#include "layers/norm/batch_stat_norm.hpp"  // the running-statistics rule
#include "layers/norm/group_norm.hpp"
#include "layers/norm/kernels/row_norm_kernels.hpp"

namespace nl {

InstanceNorm::InstanceNorm(int dims, int64_t C, float eps_, float momentum_, bool affine_, bool track)
    : spatial_dims(dims), num_features(C), eps(eps_), momentum(momentum_), affine(affine_), track_running_stats(track) {
  NL_CHECK(dims == 1 || dims == 2, "InstanceNorm: spatial_dims must be 1 or 2, got ", dims);
  NL_CHECK(C >= 1, "InstanceNorm: num_features must be positive, got ", C);
  if (affine) {
    weight = register_parameter("weight", Tensor::ones({C}));
    bias = register_parameter("bias", Tensor::zeros({C}));
  }
  if (track) {
    running_mean = register_buffer("running_mean", Tensor::zeros({C}));
    running_var = register_buffer("running_var", Tensor::ones({C}));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::scalar(0.0f));
  }
}

std::string InstanceNorm::name() const {
  return "InstanceNorm" + std::to_string(spatial_dims) + "d(" + std::to_string(num_features) + ")";
}

void InstanceNorm::check_input(const Tensor& x) const {
  NL_CHECK(x.dim() == 2 + spatial_dims && x.size(1) == num_features, name(), ": expected input ",
           spatial_dims == 1 ? "[N, C, L]" : "[N, C, H, W]", " with C=", num_features, ", got shape ", x.shape());
}

void InstanceNorm::update_running_stats(const Tensor& mean_nc, const Tensor& var_nc, int64_t M) {
  const int64_t N = mean_nc.size(0), C = num_features;
  const float *pm = mean_nc.data(), *pv = var_nc.data();
  std::vector<float> batch_mean(C), batch_var(C);  // averaged over the batch's instances
  for (int64_t c = 0; c < C; ++c) {
    double sm = 0.0, sv = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      sm += pm[n * C + c];
      sv += pv[n * C + c];
    }
    batch_mean[c] = static_cast<float>(sm / N);
    batch_var[c] = bn_detail::unbiased_var(static_cast<float>(sv / N), M);
  }
  bn_detail::momentum_update(momentum, num_batches_tracked.data(), C, batch_mean.data(), running_mean.data(),
                             batch_var.data(), running_var.data());
}

// Eval mode with running statistics: y = x * a[c] + b[c], one autograd node.
static Tensor instance_norm_eval(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                                 const Tensor& running_mean, const Tensor& running_var, float eps) {
  const Tensor x = x_in.contiguous();
  const int64_t N = x.size(0), C = x.size(1), L = x.numel() / (N * C);
  Tensor rstd = Tensor::empty({C});
  for (int64_t c = 0; c < C; ++c) rstd.data()[c] = 1.0f / std::sqrt(running_var.data()[c] + eps);
  Tensor y = Tensor::empty(x.shape());
  const RowNormKernels& k = row_norm_kernels();
  auto a_of = [weight, rstd](int64_t c) { return rstd.data()[c] * (weight.defined() ? weight.data()[c] : 1.0f); };
  {
    const float *px = x.data(), *rm = running_mean.data();
    float* py = y.data();
    parallel_for(N * C, std::max<int64_t>(1, kMinValuesPerThread / L), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t c = p % C;
        const float a = a_of(c);
        k.scale_shift(px + p * L, a, (bias.defined() ? bias.data()[c] : 0.0f) - rm[c] * a, py + p * L, L, false);
      }
    });
  }
  const Tensor xd = x.detach(), rm = running_mean.clone();
  return record(y, "instance_norm_eval", {x, weight, bias}, [=](const Tensor& gy) {
    const Tensor dy = gy.contiguous();
    const RowNormKernels& kk = row_norm_kernels();
    std::vector<float> db(N * C), ds(N * C);  // per plane: sum dy, sum dy * (x - running_mean)
    Tensor dx = x.requires_grad() ? Tensor::empty(x.shape()) : Tensor();
    parallel_for(N * C, std::max<int64_t>(1, kMinValuesPerThread / L), [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t c = p % C;
        kk.sums_dy_dyx(dy.data() + p * L, xd.data() + p * L, nullptr, nullptr, rm.data()[c], L, &db[p], &ds[p]);
        if (dx.defined()) kk.scale_shift(dy.data() + p * L, a_of(c), 0.0f, dx.data() + p * L, L, false);
      }
    });
    if (dx.defined()) accumulate_grad(x, dx);
    if (weight.defined() && weight.requires_grad()) {
      Tensor dw = Tensor::zeros({C});
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) dw.data()[c] += ds[n * C + c] * rstd.data()[c];
      accumulate_grad(weight, dw);
    }
    if (bias.defined() && bias.requires_grad()) {
      Tensor dbias = Tensor::zeros({C});
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) dbias.data()[c] += db[n * C + c];
      accumulate_grad(bias, dbias);
    }
  });
}

Tensor InstanceNorm::forward(const Tensor& x) { return normalize(x, false); }

Tensor InstanceNorm::forward_relu(const Tensor& x) {
  // Two ops when an observer reads the output before the ReLU, and in eval mode with running
  // statistics (a kernel of its own, not fused).
  if (has_norm_observer() || (track_running_stats && !is_training())) return relu(normalize(x, false));
  return normalize(x, true);
}

Tensor InstanceNorm::normalize(const Tensor& x_in, bool fused_relu) {
  check_input(x_in);
  const Tensor x = report_norm_input(x_in);
  if (track_running_stats && !is_training())
    return report_norm_output(instance_norm_eval(x, weight, bias, running_mean, running_var, eps));
  const bool update = track_running_stats && is_training();
  Tensor mean_nc, var_nc;
  const char* layer = spatial_dims == 1 ? "InstanceNorm1d" : "InstanceNorm2d";
  Tensor y = group_norm(x, num_features, weight, bias, eps, update ? &mean_nc : nullptr, update ? &var_nc : nullptr,
                        layer, fused_relu);
  if (update) update_running_stats(mean_nc, var_nc, x.numel() / (x.size(0) * num_features));
  return report_norm_output(y);
}

Tensor InstanceNorm::reference_forward(const Tensor& x) {
  check_input(x);
  Shape cshape(x.dim(), 1);
  cshape[1] = num_features;
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  Tensor y;
  if (track_running_stats && !is_training()) {
    y = (x - running_mean.reshape(cshape)) * rsqrt(running_var.reshape(cshape) + eps);
  } else {
    Tensor mu = mean(x, dims, true);
    Tensor d = x - mu;
    Tensor var = mean(d * d, dims, true);
    y = d * rsqrt(var + eps);
    if (track_running_stats) {
      NoGradGuard no_grad;
      update_running_stats(mu.reshape({x.size(0), num_features}).contiguous(),
                           var.reshape({x.size(0), num_features}).contiguous(), x.numel() / (x.size(0) * num_features));
    }
  }
  if (weight.defined()) y = y * weight.reshape(cshape);
  if (bias.defined()) y = y + bias.reshape(cshape);
  return y;
}

}  // namespace nl
