// normlab layers: BatchNorm and the family's shared pieces. The math is in batch_norm.hpp;
// the hot loops are in kernels/channel_norm_kernels_impl.inl.
#include "layers/norm/batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/autograd.hpp"
#include "core/parallel.hpp"
#include "layers/norm/kernels/channel_norm_kernels.hpp"

namespace nl {

// ---------------------------------------------------------------- BatchStatNorm

BatchStatNorm::BatchStatNorm(int64_t num_features, int64_t slots, const BatchNormOptions& o, bool has_running_var)
    : num_features_(num_features), slots_(slots), stat_batch_(o.stat_batch), momentum_(o.momentum),
      track_(o.track_running_stats), has_var_(has_running_var) {
  NL_CHECK(num_features >= 1, "BatchNorm family: num_features must be >= 1, got ", num_features);
  NL_CHECK(slots >= 1, "BatchNorm family: need at least one statistics slot, got ", slots);
  NL_CHECK(std::isfinite(momentum_) && momentum_ <= 1.0f, "BatchNorm family: momentum must be <= 1 (negative = ",
           "cumulative average), got ", momentum_);
  NL_CHECK(stat_batch_ == 0 || stat_batch_ >= 2, "BatchNorm family: stat_batch must be 0 (the whole batch) or >= 2, ",
           "got ", stat_batch_);
  if (!track_) return;
  const Shape stat_shape = slots == 1 ? Shape{num_features} : Shape{slots, num_features};
  running_mean = register_buffer("running_mean", Tensor::zeros(stat_shape));
  if (has_var_) running_var = register_buffer("running_var", Tensor::ones(stat_shape));
  num_batches_tracked =
      register_buffer("num_batches_tracked", slots == 1 ? Tensor::scalar(0.0f) : Tensor::zeros({slots}));
}

std::vector<int64_t> BatchStatNorm::stat_groups(int64_t N) const {
  std::vector<int64_t> b{0};
  if (stat_batch_ > 0)
    for (int64_t s = stat_batch_; s < N; s += stat_batch_) b.push_back(s);
  if (b.size() > 1 && N - b.back() == 1) b.pop_back();  // a leftover of one sample joins the group before it
  b.push_back(N);
  return b;
}

void BatchStatNorm::check_stat_groups(const Tensor& x, const std::vector<int64_t>& groups, int64_t S) const {
  for (size_t k = 0; k + 1 < groups.size(); ++k)
    NL_CHECK((groups[k + 1] - groups[k]) * S > 1, name(),
             ": Expected more than 1 value per channel when training, got input size ", shape_str(x.shape()),
             stat_batch_ > 0 ? detail::concat(" (statistics groups of ", stat_batch_, " samples)") : std::string());
}

void BatchStatNorm::update_running_stats_per_group(int64_t slot, const std::vector<int64_t>& groups, int64_t S, const float* mean,
                                                   const float* var_biased) {
  const int64_t C = num_features_;
  std::vector<float> var_unbiased(C);
  for (size_t k = 0; k + 1 < groups.size(); ++k) {
    const int64_t M = (groups[k + 1] - groups[k]) * S;
    if (has_var_)
      for (int64_t c = 0; c < C; ++c) var_unbiased[c] = bn_detail::unbiased_var(var_biased[k * C + c], M);
    update_running_stats(slot, mean + k * C, has_var_ ? var_unbiased.data() : nullptr);
  }
}

const float* BatchStatNorm::slot_mean(int64_t slot) const { return running_mean.data() + slot * num_features_; }
const float* BatchStatNorm::slot_var(int64_t slot) const { return running_var.data() + slot * num_features_; }

void BatchStatNorm::update_running_stats(int64_t slot, const float* batch_mean, const float* batch_var_unbiased) {
  if (!track_) return;
  const int64_t C = num_features_;
  if (precise_active_) {  // Precise BN: equal-weight sums, applied by end_precise_stats()
    for (int64_t c = 0; c < C; ++c) {
      precise_mean_sum_[slot * C + c] += batch_mean[c];
      if (has_var_) precise_var_sum_[slot * C + c] += batch_var_unbiased[c];
    }
    precise_count_[slot] += 1;
    return;
  }
  float* count = num_batches_tracked.data() + slot;
  *count += 1.0f;
  const float f = bn_detail::momentum_factor(momentum_, *count);
  float* rm = running_mean.data() + slot * C;
  for (int64_t c = 0; c < C; ++c) rm[c] = bn_detail::blend(rm[c], batch_mean[c], f);
  if (has_var_) {
    float* rv = running_var.data() + slot * C;
    for (int64_t c = 0; c < C; ++c) rv[c] = bn_detail::blend(rv[c], batch_var_unbiased[c], f);
  }
}

void BatchStatNorm::begin_precise_stats() {
  precise_active_ = true;
  precise_mean_sum_.assign(slots_ * num_features_, 0.0);
  precise_var_sum_.assign(slots_ * num_features_, 0.0);
  precise_count_.assign(slots_, 0);
}

void BatchStatNorm::end_precise_stats() {
  NL_CHECK(precise_active_, name(), ": end_precise_stats() without begin_precise_stats()");
  precise_active_ = false;
  if (!track_) return;
  const int64_t C = num_features_;
  for (int64_t s = 0; s < slots_; ++s) {
    if (precise_count_[s] == 0) continue;
    const double k = static_cast<double>(precise_count_[s]);
    for (int64_t c = 0; c < C; ++c) {
      running_mean.data()[s * C + c] = static_cast<float>(precise_mean_sum_[s * C + c] / k);
      if (has_var_) running_var.data()[s * C + c] = static_cast<float>(precise_var_sum_[s * C + c] / k);
    }
  }
}

// ---------------------------------------------------------------- shared helpers

namespace bn_detail {

std::vector<int64_t> channel_layout(const Tensor& x, int64_t C, int dims, const std::string& layer) {
  const int64_t rank = x.dim();
  if (dims == 1) {
    NL_CHECK(rank == 2 || rank == 3, layer, ": expected a 2-D [N, C] or 3-D [N, C, L] input, got ",
             shape_str(x.shape()));
  } else {
    NL_CHECK(rank == 4, layer, ": expected a 4-D [N, C, H, W] input, got ", shape_str(x.shape()));
  }
  NL_CHECK(x.size(1) == C, layer, ": input ", shape_str(x.shape()), " has ", x.size(1), " channels, expected ", C);
  int64_t S = 1;
  for (int64_t d = 2; d < rank; ++d) S *= x.size(d);
  return {x.size(0), C, S};
}

Shape channel_shape(int64_t C, int64_t rank) {
  Shape s(rank, 1);
  s[1] = C;
  return s;
}

std::vector<int64_t> stat_dims(int64_t rank) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < rank; ++d) dims.push_back(d);
  return dims;
}

Tensor group_mask(int64_t N, int64_t rank, int64_t n0, int64_t n1) {
  Shape shape(rank, 1);
  shape[0] = N;
  std::vector<float> in_group(N, 0.0f);
  for (int64_t n = n0; n < n1; ++n) in_group[n] = 1.0f;
  return Tensor::from_vector(shape, in_group);
}

Tensor reference_xhat(const Tensor& x, const std::vector<int64_t>& groups, int64_t S, float eps,
                      const GroupStatsFn& on_group) {
  const std::vector<int64_t> red = stat_dims(x.dim());
  const int64_t N = x.size(0);
  Tensor xhat;
  for (size_t k = 0; k + 1 < groups.size(); ++k) {
    const int64_t M = (groups[k + 1] - groups[k]) * S;
    const Tensor mask = group_mask(N, x.dim(), groups[k], groups[k + 1]);
    const Tensor mean_k = sum(x * mask, red, true) * (1.0f / static_cast<float>(M));
    const Tensor xmu = (x - mean_k) * mask;
    const Tensor var_k = sum(xmu * xmu, red, true) * (1.0f / static_cast<float>(M));  // biased
    const Tensor xhat_k = xmu * rsqrt(var_k + eps);
    xhat = xhat.defined() ? xhat + xhat_k : xhat_k;
    if (on_group) on_group(M, mean_k.to_vector(), var_k.to_vector());
  }
  return xhat;
}

float unbiased_var(float var_biased, int64_t M) {
  return static_cast<float>(var_biased * (static_cast<double>(M) / static_cast<double>(M - 1)));
}

// PyTorch's convention; f = 1/count when cumulative (Keras' 0.99 multiplies the old value).
float momentum_factor(float momentum, float num_batches_tracked) {
  return momentum >= 0.0f ? momentum : 1.0f / num_batches_tracked;
}

// What backward needs: the input (contiguous), and per (chunk, channel) the mean, rstd and
// the renorm constants r, d. xhat is recomputed from x, never stored.
struct Saved {
  Tensor x;
  int64_t C, S;
  std::vector<int64_t> chunks;
  std::vector<float> mean, mean_lo, rstd, r, d;  // mean = mean + mean_lo (see below)
  bool mean_only, fixed;
};

// fn(c0, c1) over channel blocks of 16 (one AVX-512 vector of an [N, C] row) split across
// threads, each thread at least ~64K values; every channel's work is independent of the split.
static void parallel_column_blocks(int64_t C, int64_t N, const std::function<void(int64_t, int64_t)>& fn) {
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, N * kBlock));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) { fn(b0 * kBlock, std::min(C, b1 * kBlock)); });
}

// A float mean of values near 1e4 is off by up to half an ulp (~5e-4); times rstd = 100 that
// is an error of 0.05 in y. So the mean is kept as two floats, hi + lo: x - hi is exact for x
// near hi (Sterbenz), and lo is folded into the per-channel constants:
//   (x - mean) * a + b  =  (x - hi) * a + (b - lo * a).

Tensor fused_batch_norm(const Tensor& x_in, int64_t C, const Tensor& weight, const Tensor& bias, float eps,
                        const std::vector<int64_t>& chunks, bool mean_only, const float* fixed_mean,
                        const float* fixed_var, const RenormFn& renorm, FusedStats* stats_out,
                        const char* node_name) {
  auto sv = std::make_shared<Saved>();
  sv->x = x_in.detach().contiguous();
  const int64_t N = x_in.size(0);
  sv->C = C;
  sv->S = x_in.numel() / (N * C);
  sv->chunks = chunks;
  sv->mean_only = mean_only;
  sv->fixed = fixed_mean != nullptr;
  const int64_t K = static_cast<int64_t>(chunks.size()) - 1, S = sv->S;
  sv->mean.assign(K * C, 0.0f);
  sv->mean_lo.assign(K * C, 0.0f);
  sv->rstd.assign(K * C, 1.0f);
  sv->r.assign(K * C, 1.0f);
  sv->d.assign(K * C, 0.0f);
  std::vector<float> var_used(K * C, 0.0f);

  Tensor y = Tensor::empty(x_in.shape());
  const float* x = sv->x.data();
  float* yp = y.data();
  const float* gamma = weight.defined() ? weight.detach().contiguous().data() : nullptr;
  const float* beta = bias.defined() ? bias.detach().contiguous().data() : nullptr;
  const ChannelNormKernelTable& kt = channel_norm_kernels();

  // Per (chunk k, channel c): from the statistics m (mean) and m2 (sum of squared deviations),
  // store what backward needs and fold everything into y = (x - mean) * a + b.
  auto fold = [&](int64_t k, int64_t c, double m, double m2, float* a_out, float* b_out) {
    const int64_t i = k * C + c;
    const double M = static_cast<double>((chunks[k + 1] - chunks[k]) * S);
    float mean, mean_lo = 0.0f, var = 0.0f;
    if (sv->fixed) {
      mean = fixed_mean[c];
      var = mean_only ? 0.0f : fixed_var[c];
    } else {
      mean = static_cast<float>(m);
      mean_lo = static_cast<float>(m - mean);
      var = mean_only ? 0.0f : static_cast<float>(m2 / M);
    }
    sv->mean[i] = mean;
    sv->mean_lo[i] = mean_lo;
    var_used[i] = var;
    const float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
    float a, shift;
    if (mean_only) {
      a = 1.0f;
      shift = b;
    } else {
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps));
      float r = 1.0f, d = 0.0f;
      if (renorm && !sv->fixed) renorm(k, c, mean, var, r, d);
      sv->rstd[i] = rstd;
      sv->r[i] = r;
      sv->d[i] = d;
      a = rstd * r * g;   // y = (xhat * r + d) * gamma + beta
      shift = d * g + b;  //   = (x - mean) * a + shift
    }
    *a_out = a;
    *b_out = shift - mean_lo * a;
  };

  if (S > 1) {
    // Threads get whole channels, at least ~64K values each (smaller tensors stay on one
    // thread: waking the pool costs more than the work). Per channel: statistics of each
    // chunk, then y, while the channel's planes are still in cache.
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, N * S));
    parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        for (int64_t k = 0; k < K; ++k) {
          const int64_t n0 = chunks[k], n1 = chunks[k + 1];
          double m = 0.0, m2 = 0.0;
          if (!sv->fixed) kt.moments(x, C, S, n0, n1, c, &m, mean_only ? nullptr : &m2);
          float a, b;
          fold(k, c, m, m2, &a, &b);
          kt.scale_shift(x, yp, C, S, n0, n1, c, sv->mean[k * C + c], a, b);
        }
      }
    });
  } else {
    // [N, C]: a channel is a column. Threads get blocks of 16 channels (one AVX-512 vector)
    // and walk all rows; the column kernels vectorize across the channels of a row.
    std::vector<double> m(C), m2(C);
    std::vector<float> a(C), b(C);
    parallel_column_blocks(C, N, [&](int64_t c0, int64_t c1) {
      for (int64_t k = 0; k < K; ++k) {
        const int64_t n0 = chunks[k], n1 = chunks[k + 1];
        if (!sv->fixed) kt.col_moments(x, C, n0, n1, c0, c1, m.data(), m2.data());
        for (int64_t c = c0; c < c1; ++c) fold(k, c, m[c], m2[c], &a[c], &b[c]);
        kt.col_scale_shift(x, yp, C, n0, n1, c0, c1, sv->mean.data() + k * C, a.data(), b.data());
      }
    });
  }
  if (stats_out) {
    stats_out->mean = sv->mean;
    stats_out->var = var_used;
  }

  return record(y, node_name, {x_in, weight, bias}, [sv, x_in, weight, bias](const Tensor& gy) {
    const Tensor dy_t = gy.contiguous();
    const float* dy = dy_t.data();
    const float* x = sv->x.data();
    const int64_t C = sv->C, S = sv->S, K = static_cast<int64_t>(sv->chunks.size()) - 1;
    // dx goes straight into x's gradient: added in the kernel when x already has one,
    // else written to a fresh buffer that becomes x's gradient (accumulate_grad would copy it).
    const bool need_dx = x_in.requires_grad();
    Tensor x_grad = need_dx ? x_in.grad() : Tensor();
    const bool add_dx = x_grad.defined();
    Tensor dx_t = !need_dx ? Tensor() : add_dx ? x_grad : Tensor::empty(x_in.shape());
    float* dx = need_dx ? dx_t.data() : nullptr;
    std::vector<float> dgamma(C, 0.0f), dbeta(C, 0.0f);
    const float* gamma = weight.defined() ? weight.detach().contiguous().data() : nullptr;
    const ChannelNormKernelTable& kt = channel_norm_kernels();

    // Per (chunk k, channel c): from the two reductions, the constants of
    // dx = dy * kc + (x - mean) * u + v, and this chunk's part of dgamma, dbeta.
    auto grad_consts = [&](int64_t k, int64_t c, double sum_dy, double sum_dy_xmu, float* kc_out, float* u_out,
                           float* v_out, double* dg, double* db) {
      const int64_t i = k * C + c;
      const float M = static_cast<float>((sv->chunks[k + 1] - sv->chunks[k]) * S);
      const float mean_lo = sv->mean_lo[i], rstd = sv->rstd[i], r = sv->r[i], d = sv->d[i];
      sum_dy_xmu -= static_cast<double>(mean_lo) * sum_dy;  // (x - hi) - lo
      *db += sum_dy;
      const float g = (gamma ? gamma[c] : 1.0f) * r;  // dxhat = dy * g
      float kc, u, v;
      if (sv->mean_only) {  // dx = dy - sum(dy) / M
        kc = 1.0f;
        u = 0.0f;
        v = sv->fixed ? 0.0f : static_cast<float>(-sum_dy / M);
      } else {
        const double sum_dy_xhat = sum_dy_xmu * rstd;
        *dg += r * sum_dy_xhat + d * sum_dy;  // dgamma = sum dy * (xhat * r + d)
        kc = g * rstd;
        if (sv->fixed) {  // mean, rstd are constants: dx = dy * gamma * rstd
          u = 0.0f;
          v = 0.0f;
        } else {
          // dx = rstd/M * (M*dxhat - sum(dxhat) - xhat * sum(dxhat*xhat))
          //    = dy*(g*rstd) + (x - mean)*u + v
          const double sum_dxhat = g * sum_dy, sum_dxhat_xhat = g * sum_dy_xhat;
          u = static_cast<float>(-static_cast<double>(rstd) * rstd * sum_dxhat_xhat / M);
          v = static_cast<float>(-rstd * sum_dxhat / M);
        }
      }
      *kc_out = kc;
      *u_out = u;
      *v_out = v - mean_lo * u;
    };

    if (S > 1) {
      const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, x_in.size(0) * S));
      parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          double dg = 0.0, db = 0.0;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t n0 = sv->chunks[k], n1 = sv->chunks[k + 1];
            const float mean = sv->mean[k * C + c];
            // the two reductions: sum(dy) and sum(dy * (x - mean)) = sum(dy * xhat) / rstd
            double sum_dy = 0.0, sum_dy_xmu = 0.0;
            kt.grad_sums(x, dy, C, S, n0, n1, c, mean, &sum_dy, sv->mean_only ? nullptr : &sum_dy_xmu);
            float kc, u, v;
            grad_consts(k, c, sum_dy, sum_dy_xmu, &kc, &u, &v, &dg, &db);
            if (need_dx) kt.grad_input(x, dy, dx, C, S, n0, n1, c, mean, kc, u, v, add_dx);
          }
          dgamma[c] = static_cast<float>(dg);
          dbeta[c] = static_cast<float>(db);
        }
      });
    } else {  // [N, C]: column kernels, as in forward
      const int64_t N = x_in.size(0);
      std::vector<double> sum_dy(C), sum_dy_xmu(C);
      std::vector<float> kc(C), u(C), v(C);
      parallel_column_blocks(C, N, [&](int64_t c0, int64_t c1) {
        std::vector<double> dg(c1 - c0, 0.0), db(c1 - c0, 0.0);
        for (int64_t k = 0; k < K; ++k) {
          const int64_t n0 = sv->chunks[k], n1 = sv->chunks[k + 1];
          const float* mean = sv->mean.data() + k * C;
          kt.col_grad_sums(x, dy, C, n0, n1, c0, c1, mean, sum_dy.data(), sum_dy_xmu.data());
          for (int64_t c = c0; c < c1; ++c)
            grad_consts(k, c, sum_dy[c], sum_dy_xmu[c], &kc[c], &u[c], &v[c], &dg[c - c0], &db[c - c0]);
          if (need_dx) kt.col_grad_input(x, dy, dx, C, n0, n1, c0, c1, mean, kc.data(), u.data(), v.data(), add_dx);
        }
        for (int64_t c = c0; c < c1; ++c) {
          dgamma[c] = static_cast<float>(dg[c - c0]);
          dbeta[c] = static_cast<float>(db[c - c0]);
        }
      });
    }
    if (need_dx && !add_dx) Tensor(x_in).set_grad(dx_t);
    if (weight.defined() && weight.requires_grad()) accumulate_grad(weight, Tensor::from_vector({C}, dgamma));
    if (bias.defined() && bias.requires_grad()) accumulate_grad(bias, Tensor::from_vector({C}, dbeta));
  });
}

}  // namespace bn_detail

// ---------------------------------------------------------------- BatchNorm

BatchNorm::BatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchStatNorm(num_features, 1, options_, true), dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "BatchNorm: dims must be 1 (BatchNorm1d) or 2 (BatchNorm2d), got ", dims);
  NL_CHECK(options.eps > 0.0f, name(), ": eps must be > 0, got ", options.eps);
  if (options.affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
}

std::string BatchNorm::name() const {
  return detail::concat("BatchNorm", dims, "d(", num_features(),
                        stat_batch() > 0 ? detail::concat(", stat_batch=", stat_batch()) : std::string(), ")");
}

Tensor BatchNorm::forward(const Tensor& x) {
  report_norm_input(x);
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  const bool batch_stats = is_training() || !tracks_running_stats();
  if (!batch_stats)
    return report_norm_output(bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, {0, N}, false,
                                                          slot_mean(0), slot_var(0), nullptr, nullptr,
                                                          "batch_norm_eval"));
  const std::vector<int64_t> groups = stat_groups(N);
  check_stat_groups(x, groups, S);
  bn_detail::FusedStats st;
  Tensor y = bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, groups, false, nullptr, nullptr, nullptr,
                                         &st, "batch_norm");
  if (is_training()) update_running_stats_per_group(0, groups, S, st.mean.data(), st.var.data());
  return report_norm_output(y);
}

Tensor BatchNorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  const Shape cs = bn_detail::channel_shape(C, x.dim());
  Tensor y;
  if (!is_training() && tracks_running_stats()) {
    y = (x - running_mean.view(cs)) * rsqrt(running_var.view(cs) + options.eps);
  } else {
    const std::vector<int64_t> groups = stat_groups(N);
    check_stat_groups(x, groups, S);
    y = bn_detail::reference_xhat(x, groups, S, options.eps, [&](int64_t M, std::vector<float> m, std::vector<float> v) {
      if (!is_training()) return;
      for (auto& e : v) e = bn_detail::unbiased_var(e, M);
      update_running_stats(0, m.data(), v.data());
    });
  }
  if (options.affine) y = y * weight.view(cs) + bias.view(cs);
  return y;
}

}  // namespace nl
