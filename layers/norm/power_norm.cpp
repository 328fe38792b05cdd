// normlab norms: PowerNorm. The math and the names are in power_norm.hpp; the loops are the
// BatchNorm family's column kernels (kernels/channel_norm_kernels_impl.inl) with a zero mean.
#include "layers/norm/power_norm.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>

#include "core/autograd.hpp"
#include "core/parallel.hpp"
#include "layers/norm/batch_stat_norm.hpp"  // bn_detail::check_more_than_one_value
#include "layers/norm/kernels/channel_norm_kernels.hpp"
#include "layers/norm/rms_norm.hpp"

namespace nl {

std::string power_norm_backward_name(PowerNormBackward b) {
  return b == PowerNormBackward::approximate ? "approximate" : "exact";
}

PowerNormBackward parse_power_norm_backward(const std::string& name) {
  if (name == "approximate") return PowerNormBackward::approximate;
  if (name == "exact") return PowerNormBackward::exact;
  throw Error("PowerNorm: unknown backward '" + name + "' (approximate or exact)");
}

namespace {

// fn(c0, c1) over blocks of 16 features (one AVX-512 vector of a row), each thread at least
// ~64K values; a feature's numbers never depend on the split.
void parallel_feature_blocks(int64_t C, int64_t R, const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, R * kBlock));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) { fn(b0 * kBlock, std::min(C, b1 * kBlock)); });
}

// How one call of the power function normalizes (power_norm.hpp, step 2).
struct PowerSpec {
  bool batch_stats = false;            // phi = qm_B (warm-up) or running_phi
  const float* running_phi = nullptr;  // [C], read in forward only (when !batch_stats)
  bool need_batch_qm = false;          // training: qm_B is computed (and returned)
  Tensor ema_gz;                       // defined: the approximate backward, which updates it
  float alpha_bkw = 0.9f, eps = 1e-5f;
};

// What the backward needs, per feature: rstd (the forward's), rstd_B and qm_B (training).
struct PowerSaved {
  Tensor s;  // [R, C], detached
  int64_t R = 0, C = 0;
  std::vector<float> rstd, rstd_batch, qm_batch;
  PowerSpec spec;
};

// The power function as one autograd node. s: [R, C] (contiguous). qm_out: qm_B [C] (training).
Tensor power_function(const Tensor& s_in, const Tensor& weight, const Tensor& bias, const PowerSpec& spec,
                      std::vector<float>* qm_out) {
  auto sv = std::make_shared<PowerSaved>();
  sv->s = s_in.detach().contiguous();
  sv->R = s_in.size(0);
  sv->C = s_in.size(1);
  sv->spec = spec;
  const int64_t R = sv->R, C = sv->C;
  sv->rstd.assign(C, 1.0f);
  sv->rstd_batch.assign(C, 1.0f);
  sv->qm_batch.assign(C, 0.0f);
  const float* s = sv->s.data();
  const float* gamma = weight.defined() ? weight.data() : nullptr;
  const float* beta = bias.defined() ? bias.data() : nullptr;
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const std::vector<float> zero(C, 0.0f);  // the column kernels' mean: nothing is subtracted
  std::vector<double> mean(C), m2(C);
  std::vector<float> a(C), b(C);
  Tensor y = Tensor::empty({R, C});
  parallel_feature_blocks(C, R, [&](int64_t c0, int64_t c1) {
    if (spec.need_batch_qm) kt.col_moments(s, C, 0, R, c0, c1, mean.data(), m2.data());
    for (int64_t c = c0; c < c1; ++c) {
      if (spec.need_batch_qm) {
        const double qm = m2[c] / static_cast<double>(R) + mean[c] * mean[c];  // 1/R sum s^2
        sv->qm_batch[c] = static_cast<float>(qm);
        sv->rstd_batch[c] = static_cast<float>(1.0 / std::sqrt(qm + spec.eps));
      }
      sv->rstd[c] = spec.batch_stats ? sv->rstd_batch[c]
                                     : static_cast<float>(1.0 / std::sqrt(static_cast<double>(spec.running_phi[c]) + spec.eps));
      a[c] = sv->rstd[c] * (gamma ? gamma[c] : 1.0f);  // y = s * rstd * gamma + beta
      b[c] = beta ? beta[c] : 0.0f;
    }
    kt.col_scale_shift(s, y.data(), C, 0, R, c0, c1, zero.data(), a.data(), b.data(), false);
  });
  if (qm_out) *qm_out = sv->qm_batch;

  return record(y, "power_norm", {s_in, weight, bias}, [sv, s_in, weight, bias](const Tensor& gy) {
    const Tensor dy_t = gy.contiguous();
    const float* dy = dy_t.data();
    const float* s = sv->s.data();
    const int64_t R = sv->R, C = sv->C;
    const PowerSpec& spec = sv->spec;
    const bool approximate = spec.ema_gz.defined();
    float* ema_gz = approximate ? spec.ema_gz.data() : nullptr;
    const float* gamma = weight.defined() ? weight.data() : nullptr;
    const bool need_ds = s_in.requires_grad();
    Tensor ds_t = need_ds ? Tensor::empty({R, C}) : Tensor();
    std::vector<float> dgamma(C), dbeta(C), k(C), u(C);
    const std::vector<float> zero(C, 0.0f);
    std::vector<double> sum_dy(C), sum_dy_s(C);
    const ChannelNormKernelTable& kt = channel_norm_kernels();
    parallel_feature_blocks(C, R, [&](int64_t c0, int64_t c1) {
      // the two reductions: sum(dy) and sum(dy * s)
      kt.col_grad_sums(s, dy, nullptr, nullptr, C, 0, R, c0, c1, zero.data(), sum_dy.data(), sum_dy_s.data());
      for (int64_t c = c0; c < c1; ++c) {
        const double gm = gamma ? gamma[c] : 1.0f;
        const double rstd = sv->rstd[c], rstd_B = sv->rstd_batch[c];
        const double dnorm_norm_mean = gm * rstd * sum_dy_s[c] / static_cast<double>(R);  // mean(g * z)
        dgamma[c] = static_cast<float>(rstd * sum_dy_s[c]);  // sum dy * z
        dbeta[c] = static_cast<float>(sum_dy[c]);
        if (approximate) {  // ds = rstd_B * (g - nu * z)
          const double nu = (1.0 - static_cast<double>(spec.alpha_bkw)) * ema_gz[c];
          k[c] = static_cast<float>(gm * rstd_B);
          u[c] = static_cast<float>(-rstd_B * nu * rstd);
          const double mean_z2 = rstd * rstd * sv->qm_batch[c];
          ema_gz[c] += static_cast<float>(dnorm_norm_mean - nu * mean_z2);  // += mean(g_tilde * z)
        } else if (spec.batch_stats) {  // ds = rstd_B * (g - z * dnorm_norm_mean)
          k[c] = static_cast<float>(gm * rstd_B);
          u[c] = static_cast<float>(-rstd_B * rstd_B * dnorm_norm_mean);
        } else {  // phi is a constant: ds = g * rstd
          k[c] = static_cast<float>(gm * rstd);
          u[c] = 0.0f;
        }
      }
      if (need_ds)
        kt.col_grad_input(s, dy, nullptr, nullptr, ds_t.data(), C, 0, R, c0, c1, zero.data(), k.data(), u.data(), zero.data());
    });
    if (need_ds) accumulate_grad(s_in, ds_t);
    if (weight.defined() && weight.requires_grad()) accumulate_grad(weight, Tensor::from_vector({C}, dgamma));
    if (bias.defined() && bias.requires_grad()) accumulate_grad(bias, Tensor::from_vector({C}, dbeta));
  });
}

}  // namespace

PowerNorm::PowerNorm(int64_t C, PowerNormOptions o) : options(o), num_features_(C) {
  NL_CHECK(C >= 1, "PowerNorm: num_features must be >= 1, got ", C);
  NL_CHECK(o.groups >= 1 && C % o.groups == 0, "PowerNorm: groups=", o.groups, " must divide num_features=", C);
  NL_CHECK(o.eps > 0.0f, "PowerNorm: eps must be > 0, got ", o.eps);
  NL_CHECK(o.alpha_fwd >= 0.0f && o.alpha_fwd <= 1.0f && o.alpha_bkw >= 0.0f && o.alpha_bkw <= 1.0f,
           "PowerNorm: alpha_fwd and alpha_bkw must be in [0, 1], got ", o.alpha_fwd, " and ", o.alpha_bkw);
  NL_CHECK(o.warmup_steps >= 0, "PowerNorm: warmup_steps must be >= 0, got ", o.warmup_steps);
  if (o.affine) {
    weight = register_parameter("weight", Tensor::ones({C}));
    bias = register_parameter("bias", Tensor::zeros({C}));
  }
  running_phi = register_buffer("running_phi", Tensor::ones({C}));
  ema_gz = register_buffer("ema_gz", Tensor::zeros({C}));
  iters = register_buffer("iters", Tensor::scalar(0.0f));
}

std::string PowerNorm::name() const {
  return detail::concat("PowerNorm(", num_features_,
                        options.groups > 1 ? detail::concat(", groups=", options.groups) : std::string(), ")");
}

bool PowerNorm::in_warmup() const { return iters.item() + 1.0f <= static_cast<float>(options.warmup_steps); }

static void check_features(const Tensor& x, int64_t C, const std::string& layer) {
  NL_CHECK(x.dim() >= 1 && x.size(-1) == C && x.numel() > 0, layer, ": expected input [..., ", C,
           "] (features last), got shape ", x.shape());
}

Tensor PowerNorm::group_scaling(const Tensor& x2d) const {
  const int64_t R = x2d.size(0), G = options.groups, C = num_features_;
  return rms_norm(x2d.reshape({R, G, C / G}), {C / G}, Tensor(), options.eps).reshape({R, C});
}

Tensor PowerNorm::group_scaling_reference(const Tensor& x2d) const {
  const int64_t R = x2d.size(0), G = options.groups, C = num_features_;
  const Tensor xg = x2d.reshape({R, G, C / G});
  return (xg * rsqrt(mean(xg * xg, {2}, true) + options.eps)).reshape({R, C});
}

void PowerNorm::update_running_phi(const std::vector<float>& qm_batch, float t) {
  const float W = static_cast<float>(options.warmup_steps), a = options.alpha_fwd;
  float* phi = running_phi.data();
  for (int64_t c = 0; c < num_features_; ++c) {
    if (t < W) phi[c] = phi[c] * (t - 1.0f) / t + qm_batch[c] / t;
    phi[c] = a * phi[c] + (1.0f - a) * qm_batch[c];
  }
}

Tensor PowerNorm::forward(const Tensor& x_in) {
  check_features(x_in, num_features_, name());
  const Tensor x = report_norm_input(x_in);
  const Tensor s = group_scaling(x.reshape({-1, num_features_}));
  PowerSpec spec;
  spec.eps = options.eps;
  spec.alpha_bkw = options.alpha_bkw;
  spec.running_phi = running_phi.data();
  if (!is_training()) return report_norm_output(power_function(s, weight, bias, spec, nullptr).reshape(x.shape()));
  bn_detail::check_more_than_one_value(x.numel() / num_features_, name(), x);
  spec.batch_stats = in_warmup();
  spec.need_batch_qm = true;
  if (options.backward == PowerNormBackward::approximate) spec.ema_gz = ema_gz;
  iters.data()[0] += 1.0f;
  std::vector<float> qm_batch;
  Tensor y = power_function(s, weight, bias, spec, &qm_batch);
  update_running_phi(qm_batch, iters.item());
  return report_norm_output(y.reshape(x.shape()));
}

Tensor PowerNorm::reference_forward(const Tensor& x) {
  check_features(x, num_features_, name());
  const int64_t C = num_features_;
  const Tensor s = group_scaling_reference(x.reshape({-1, C}));
  const Tensor qm = mean(s * s, {0}, true);  // [1, C]
  const bool batch_stats = is_training() && in_warmup();
  const Tensor phi = batch_stats ? qm : running_phi.clone().reshape({1, C});  // a constant
  Tensor y = s * rsqrt(phi + options.eps);
  if (weight.defined()) y = y * weight + bias;
  if (is_training()) {
    iters.data()[0] += 1.0f;
    update_running_phi(qm.to_vector(), iters.item());
  }
  return y.reshape(x.shape());
}

}  // namespace nl
