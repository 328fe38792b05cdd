// normlab layers: the BatchNorm family's fused op. The steps and their formulas are in
// batch_norm_op.hpp; the hot loops are in kernels/channel_norm_kernels_impl.inl.
#include "layers/norm/batch_norm_op.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/autograd.hpp"
#include "core/parallel.hpp"
#include "layers/norm/kernels/channel_norm_kernels.hpp"

namespace nl::bn_detail {

void merge_moments(GroupMoments& into, const GroupMoments& other) {
  for (size_t i = 0; i < into.count.size(); ++i) {
    const double na = into.count[i], nb = other.count[i], n = na + nb;
    if (nb == 0.0) continue;
    if (na == 0.0) {  // nothing yet: take the other's as they are (no rounding)
      into.count[i] = nb, into.mean[i] = other.mean[i], into.m2[i] = other.m2[i];
      continue;
    }
    const double delta = other.mean[i] - into.mean[i];
    into.mean[i] += delta * nb / n;
    into.m2[i] += other.m2[i] + delta * delta * na * nb / n;
    into.count[i] = n;
  }
}

namespace {

// fn(c0, c1) over tiles of channels split across threads, each thread at least ~64K values.
// S > 1: one channel per tile (the channel kernels walk its N planes). S == 1 ([N, C]): a
// channel is a column, so tiles are blocks of 16 channels (one AVX-512 vector of a row) and
// the column kernels vectorize across them. No channel's result depends on the split.
void for_channel_tiles(int64_t N, int64_t C, int64_t S, const std::function<void(int64_t, int64_t)>& fn) {
  if (S > 1) {
    const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, N * S));
    parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) fn(c, c + 1);
    });
    return;
  }
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (C + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, N * kBlock));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) { fn(b0 * kBlock, std::min(C, b1 * kBlock)); });
}

// What backward needs besides dy, per (k, c): xhat is recomputed from x, never stored.
// A float mean of values near 1e4 is off by up to half an ulp (~5e-4); times rstd = 100 that
// is 0.05 in y. So the mean is kept as two floats, mean + mean_lo: x - mean is exact for x
// near it (Sterbenz) and mean_lo is folded into the constants, (x - mean - mean_lo) * a + b.
struct Saved {
  Tensor x;  // contiguous [N, C, S]
  int64_t N, C, S, K;
  std::vector<int64_t> groups;
  bool mean_only, fixed;
  Tensor relu_y;  // ReLU fused: the output y = max(0, ...), whose sign masks dy; else undefined
  std::vector<double> count;  // M
  std::vector<float> mean, mean_lo, rstd, r, d;
  std::function<void(GradSums&)> combine_grad_sums;
};

// ---------------------------------------------------------------- forward
// Step 1 for the channels [c0, c1) of every group: this worker's count, mean, m2.
void partial_moments(const Saved& sv, int64_t c0, int64_t c1, GroupMoments& m) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const float* x = sv.x.data();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * sv.C;
    if (n1 == n0) continue;  // no values (a SyncBN rank without samples): count, mean, m2 stay 0
    if (sv.S > 1) {
      for (int64_t c = c0; c < c1; ++c)
        kt.moments(x, sv.C, sv.S, n0, n1, c, &m.mean[i0 + c], sv.mean_only ? nullptr : &m.m2[i0 + c]);
    } else {
      kt.col_moments(x, sv.C, n0, n1, c0, c1, m.mean.data() + i0, m.m2.data() + i0);
    }
    for (int64_t c = c0; c < c1; ++c) m.count[i0 + c] = static_cast<double>((n1 - n0) * sv.S);
  }
}

// The per-(k, c) constants of y = (x - mean) * a + b, [K * C] each.
struct ScaleShift {
  std::vector<float> var, a, b;
};

// Step 3 for channel c of every group, in group order: the statistics used (var, rstd; r, d
// from the renorm callback), then a and b. Fills sv's mean, mean_lo, count, rstd, r, d.
void fold(Saved& sv, const GroupMoments& moments, const BatchNormSpec& spec, const float* gamma, const float* beta,
          int64_t c, ScaleShift& f) {
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t i = k * sv.C + c;
    if (sv.fixed) {
      sv.mean[i] = spec.fixed_mean[c];
      f.var[i] = sv.mean_only ? 0.0f : spec.fixed_var[c];
    } else {
      sv.count[i] = moments.count[i];
      sv.mean[i] = static_cast<float>(moments.mean[i]);
      sv.mean_lo[i] = static_cast<float>(moments.mean[i] - sv.mean[i]);
      f.var[i] = sv.mean_only ? 0.0f : static_cast<float>(moments.m2[i] / moments.count[i]);
    }
    const float g = gamma ? gamma[c] : 1.0f, beta_c = beta ? beta[c] : 0.0f;
    if (sv.mean_only) {
      f.a[i] = 1.0f;
      f.b[i] = beta_c;
    } else {
      sv.rstd[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(f.var[i]) + spec.eps));
      if (spec.renorm && !sv.fixed) spec.renorm(k, c, sv.mean[i], f.var[i], sv.r[i], sv.d[i]);
      f.a[i] = sv.rstd[i] * sv.r[i] * g;
      f.b[i] = sv.d[i] * g + beta_c;
    }
    f.b[i] -= sv.mean_lo[i] * f.a[i];
  }
}

// Step 4 for the channels [c0, c1): y = (x - mean) * a + b (relu: max(0, that)).
void normalize(const Saved& sv, const ScaleShift& f, int64_t c0, int64_t c1, bool relu, float* y) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * sv.C;
    if (sv.S > 1) {
      for (int64_t c = c0; c < c1; ++c)
        kt.scale_shift(sv.x.data(), y, sv.C, sv.S, n0, n1, c, sv.mean[i0 + c], f.a[i0 + c], f.b[i0 + c],
                       relu);
    } else {
      kt.col_scale_shift(sv.x.data(), y, sv.C, n0, n1, c0, c1, sv.mean.data() + i0, f.a.data() + i0,
                         f.b.data() + i0, relu);
    }
  }
}

// Steps 1-4; returns y, and the var used [K * C] (biased; zeros in mean-only mode).
Tensor forward(Saved& sv, const BatchNormSpec& spec, const float* gamma, const float* beta, std::vector<float>& var) {
  const int64_t N = sv.N, C = sv.C, S = sv.S, KC = sv.K * C;
  GroupMoments moments{std::vector<double>(KC, 0.0), std::vector<double>(KC, 0.0), std::vector<double>(KC, 0.0)};
  ScaleShift f{std::vector<float>(KC, 0.0f), std::vector<float>(KC, 1.0f), std::vector<float>(KC, 0.0f)};
  Tensor y = Tensor::empty(sv.x.shape());
  auto fold_and_normalize = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fold(sv, moments, spec, gamma, beta, c, f);
    normalize(sv, f, c0, c1, spec.relu, y.data());
  };
  if (sv.fixed) {
    for_channel_tiles(N, C, S, fold_and_normalize);
  } else if (!spec.combine_moments) {  // one pass per tile while it is in cache
    for_channel_tiles(N, C, S, [&](int64_t c0, int64_t c1) {
      partial_moments(sv, c0, c1, moments);
      fold_and_normalize(c0, c1);
    });
  } else {  // SyncBN: every channel's partial moments, the all-gather, then normalize
    for_channel_tiles(N, C, S, [&](int64_t c0, int64_t c1) { partial_moments(sv, c0, c1, moments); });
    spec.combine_moments(moments);
    for_channel_tiles(N, C, S, fold_and_normalize);
  }
  var = std::move(f.var);
  if (spec.relu) sv.relu_y = y.detach();  // shares y's storage, not its autograd node
  return y;
}

// ---------------------------------------------------------------- backward
struct Grads {
  GradSums sums;                             // [K * C]
  std::vector<float> dgamma, dbeta;          // [C]
  std::vector<float> a, dx_slope, dx_shift;  // [K * C]: step 4's constants
};

// Steps 1 and 2 for the channels [c0, c1): this worker's sums, its dgamma and dbeta.
void grad_sums(const Saved& sv, const float* dy, int64_t c0, int64_t c1, Grads& g) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const float* x = sv.x.data();
  const float* relu_y = sv.relu_y.defined() ? sv.relu_y.data() : nullptr;
  const int64_t C = sv.C;
  GradSums& sums = g.sums;
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * C;
    if (sv.S > 1) {
      for (int64_t c = c0; c < c1; ++c)
        kt.grad_sums(x, dy, relu_y, C, sv.S, n0, n1, c, sv.mean[i0 + c], &sums.sum_dy[i0 + c],
                     sv.mean_only ? nullptr : &sums.sum_dy_xmu[i0 + c]);
    } else {
      kt.col_grad_sums(x, dy, relu_y, C, n0, n1, c0, c1, sv.mean.data() + i0, sums.sum_dy.data() + i0,
                       sums.sum_dy_xmu.data() + i0);
    }
    for (int64_t c = c0; c < c1; ++c)  // the kernels measured from mean; the mean is mean + mean_lo
      sums.sum_dy_xmu[i0 + c] -= static_cast<double>(sv.mean_lo[i0 + c]) * sums.sum_dy[i0 + c];
  }
  for (int64_t c = c0; c < c1; ++c) {
    double dg = 0.0, db = 0.0;
    for (int64_t k = 0; k < sv.K; ++k) {
      const int64_t i = k * C + c;
      const double sum_dy_xhat = sums.sum_dy_xmu[i] * sv.rstd[i];
      db += sums.sum_dy[i];
      dg += sv.r[i] * sum_dy_xhat + sv.d[i] * sums.sum_dy[i];  // dgamma = sum dy * (xhat * r + d)
    }
    g.dgamma[c] = static_cast<float>(dg);
    g.dbeta[c] = static_cast<float>(db);
  }
}

// Step 4 for the channels [c0, c1): dx = dy * a + (x - mean) * dx_slope + dx_shift, i.e.
// a * (dy - sum_dy / M - xhat * sum_dy_xhat / M) with the constants per (k, c).
void grad_input(const Saved& sv, const float* dy, const float* gamma, int64_t c0, int64_t c1, Grads& grads, float* dx) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const float* x = sv.x.data();
  const float* relu_y = sv.relu_y.defined() ? sv.relu_y.data() : nullptr;
  const int64_t C = sv.C;
  const GradSums& sums = grads.sums;
  float *a = grads.a.data(), *dx_slope = grads.dx_slope.data(), *dx_shift = grads.dx_shift.data();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * C;
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i = i0 + c;
      const double M = sv.count[i], rstd = sv.rstd[i], g = (gamma ? gamma[c] : 1.0f) * sv.r[i];
      const double a_i = sv.mean_only ? 1.0 : g * rstd;  // = forward's a
      const double sum_dy_xhat = sums.sum_dy_xmu[i] * rstd;
      a[i] = static_cast<float>(a_i);
      dx_slope[i] = sv.fixed || sv.mean_only ? 0.0f : static_cast<float>(-a_i * rstd * sum_dy_xhat / M);
      dx_shift[i] = sv.fixed ? 0.0f : static_cast<float>(-a_i * sums.sum_dy[i] / M);
      dx_shift[i] -= sv.mean_lo[i] * dx_slope[i];
    }
    if (sv.S > 1) {
      for (int64_t c = c0; c < c1; ++c)
        kt.grad_input(x, dy, relu_y, dx, C, sv.S, n0, n1, c, sv.mean[i0 + c], a[i0 + c], dx_slope[i0 + c],
                      dx_shift[i0 + c]);
    } else {
      kt.col_grad_input(x, dy, relu_y, dx, C, n0, n1, c0, c1, sv.mean.data() + i0, a + i0, dx_slope + i0,
                        dx_shift + i0);
    }
  }
}

// Steps 1-4, then the gradients go to x, gamma, beta through accumulate_grad.
void backward(const Saved& sv, const Tensor& gy, const Tensor& x_in, const Tensor& weight, const Tensor& bias) {
  const Tensor dy_t = gy.contiguous();
  const float* dy = dy_t.data();
  const int64_t N = sv.N, C = sv.C, S = sv.S, KC = sv.K * C;
  const Tensor gamma_t = weight.defined() ? weight.detach().contiguous() : Tensor();
  const float* gamma = gamma_t.defined() ? gamma_t.data() : nullptr;
  Grads g{{std::vector<double>(KC, 0.0), std::vector<double>(KC, 0.0)}, std::vector<float>(C), std::vector<float>(C),
          std::vector<float>(KC), std::vector<float>(KC), std::vector<float>(KC)};
  const bool need_dx = x_in.requires_grad();
  Tensor dx = need_dx ? Tensor::empty(x_in.shape()) : Tensor();
  if (!sv.combine_grad_sums) {  // one pass per tile while it is in cache
    for_channel_tiles(N, C, S, [&](int64_t c0, int64_t c1) {
      grad_sums(sv, dy, c0, c1, g);
      if (need_dx) grad_input(sv, dy, gamma, c0, c1, g, dx.data());
    });
  } else {  // SyncBN: every channel's sums, the all-reduce (on every worker), then dx
    for_channel_tiles(N, C, S, [&](int64_t c0, int64_t c1) { grad_sums(sv, dy, c0, c1, g); });
    sv.combine_grad_sums(g.sums);
    if (need_dx)
      for_channel_tiles(N, C, S, [&](int64_t c0, int64_t c1) { grad_input(sv, dy, gamma, c0, c1, g, dx.data()); });
  }
  if (need_dx) accumulate_grad(x_in, dx);
  if (weight.defined() && weight.requires_grad()) accumulate_grad(weight, Tensor::from_vector({C}, g.dgamma));
  if (bias.defined() && bias.requires_grad()) accumulate_grad(bias, Tensor::from_vector({C}, g.dbeta));
}

}  // namespace

Tensor batch_norm(const Tensor& x_in, int64_t C, const Tensor& weight, const Tensor& bias, const BatchNormSpec& spec,
                  UsedStats* used) {
  auto sv = std::make_shared<Saved>();
  sv->x = x_in.detach().contiguous();
  sv->N = x_in.size(0);
  sv->C = C;
  sv->S = 1;
  for (int64_t d = 2; d < x_in.dim(); ++d) sv->S *= x_in.size(d);
  sv->groups = spec.groups.empty() ? std::vector<int64_t>{0, sv->N} : spec.groups;
  sv->K = static_cast<int64_t>(sv->groups.size()) - 1;
  sv->mean_only = spec.mean_only;
  sv->fixed = spec.fixed_mean != nullptr;
  sv->combine_grad_sums = spec.combine_grad_sums;
  const int64_t KC = sv->K * C;
  sv->count.assign(KC, 0.0);
  sv->mean.assign(KC, 0.0f);
  sv->mean_lo.assign(KC, 0.0f);
  sv->rstd.assign(KC, 1.0f);
  sv->r.assign(KC, 1.0f);
  sv->d.assign(KC, 0.0f);

  const Tensor gamma_t = weight.defined() ? weight.detach().contiguous() : Tensor();
  const Tensor beta_t = bias.defined() ? bias.detach().contiguous() : Tensor();
  std::vector<float> var;
  Tensor y = forward(*sv, spec, gamma_t.defined() ? gamma_t.data() : nullptr, beta_t.defined() ? beta_t.data() : nullptr,
                     var);
  if (used) *used = {sv->mean, std::move(var)};
  return record(y, spec.node_name, {x_in, weight, bias},
                [sv, x_in, weight, bias](const Tensor& gy) { backward(*sv, gy, x_in, weight, bias); });
}

}  // namespace nl::bn_detail
