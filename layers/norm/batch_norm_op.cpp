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

// One set of moments (count nb, mean_b, m2_b) merged into `into` at index i (Chan et al.).
static void merge_moments_at(GroupMoments& into, size_t i, double nb, double mean_b, double m2_b) {
  const double na = into.count[i], n = na + nb;
  if (nb == 0.0) return;
  if (na == 0.0) {  // nothing yet: take the other's as they are (no rounding)
    into.count[i] = nb, into.mean[i] = mean_b, into.m2[i] = m2_b;
    return;
  }
  const double delta = mean_b - into.mean[i];
  into.mean[i] += delta * nb / n;
  into.m2[i] += m2_b + delta * delta * na * nb / n;
  into.count[i] = n;
}

void merge_moments(GroupMoments& into, const GroupMoments& other) {
  for (size_t i = 0; i < into.count.size(); ++i) merge_moments_at(into, i, other.count[i], other.mean[i], other.m2[i]);
}

namespace {

// [N, C, S] with S > 1: fn(c, c + 1) for every channel, split across threads, each thread at
// least ~64K values; the channel kernels walk the channel's N planes while they are in cache.
void for_channels(int64_t N, int64_t C, int64_t S, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, N * S));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, c + 1);
  });
}

// [N, C] (S == 1, BatchNorm1d): a channel is a column of the row-major matrix, so the work is
// split by rows instead, into blocks of whole rows inside one statistics group (~64K values,
// at most 64 blocks per group; the column kernels vectorize across a row's channels). Each
// block's moments or gradient sums go to a slot of their own and are merged in block order,
// so no result depends on the thread count. (Tiles of 16 channels walking every row read one
// 64-byte line per row at the row's stride: latency-bound, and 2 threads ran slower than 1.)
struct RowBlock {
  int64_t k, r0, r1;  // group, rows [r0, r1)
};

std::vector<RowBlock> row_blocks(const std::vector<int64_t>& groups, int64_t C) {
  constexpr int64_t kAlign = 32;  // the column kernels' row tile (channel_norm_kernels_impl.inl)
  const int64_t target = std::max<int64_t>(kAlign, ((int64_t{1} << 16) / std::max<int64_t>(1, C)) / kAlign * kAlign);
  std::vector<RowBlock> blocks;
  for (size_t k = 0; k + 1 < groups.size(); ++k) {
    const int64_t n0 = groups[k], n1 = groups[k + 1];
    const int64_t at_most_64 = ((n1 - n0 + 63) / 64 + kAlign - 1) / kAlign * kAlign;
    const int64_t rows = std::max(target, at_most_64);
    for (int64_t r0 = n0; r0 < n1; r0 += rows) blocks.push_back({static_cast<int64_t>(k), r0, std::min(n1, r0 + rows)});
  }
  return blocks;
}

// fn(b) for every block, split across threads with at least ~64K values per thread.
void for_row_blocks(const std::vector<RowBlock>& blocks, int64_t N, int64_t C, const std::function<void(int64_t)>& fn) {
  const int64_t B = static_cast<int64_t>(blocks.size());
  const int64_t grain = std::max<int64_t>(1, ((int64_t{1} << 16) * B) / std::max<int64_t>(1, N * C));
  parallel_for(B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) fn(b);
  });
}

// What backward needs besides dy, per (k, c): xhat is recomputed from x, never stored.
// A float mean of values near 1e4 is off by up to half an ulp (~5e-4); times rstd = 100 that
// is 0.05 in y. So the mean is kept as two floats, mean + mean_lo: x - mean is exact for x
// near it (Sterbenz) and mean_lo is folded into the constants, (x - mean - mean_lo) * a + b.
struct Saved {
  Tensor x;  // contiguous [N, C, S]
  int64_t N, C, S, K;
  std::vector<int64_t> groups;
  std::vector<RowBlock> blocks;  // S == 1 only
  bool mean_only, fixed;
  std::vector<float> relu_a, relu_b;  // ReLU fused: the forward's a, b [K * C] (y's sign masks dy); else empty
  // The kernels' relu_a / relu_b arguments from entry i on: null when the ReLU is not fused.
  const float* relu_a_at(int64_t i) const { return relu_a.empty() ? nullptr : relu_a.data() + i; }
  const float* relu_b_at(int64_t i) const { return relu_b.empty() ? nullptr : relu_b.data() + i; }
  std::vector<double> count;  // M
  std::vector<float> mean, mean_lo, rstd, r, d;
  std::function<void(GradSums&)> combine_grad_sums;
};

// ---------------------------------------------------------------- forward
// Step 1 for the channels [c0, c1) of every group (S > 1): this worker's count, mean, m2.
void partial_moments(const Saved& sv, int64_t c0, int64_t c1, GroupMoments& m) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const float* x = sv.x.data();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * sv.C;
    if (n1 == n0) continue;  // no values (a SyncBN rank without samples): count, mean, m2 stay 0
    for (int64_t c = c0; c < c1; ++c) {
      kt.moments(x, sv.C, sv.S, n0, n1, c, &m.mean[i0 + c], sv.mean_only ? nullptr : &m.m2[i0 + c]);
      m.count[i0 + c] = static_cast<double>((n1 - n0) * sv.S);
    }
  }
}

// Step 1 for S == 1: each row block's moments, then merged into its group's in block order.
void partial_moments_by_rows(const Saved& sv, GroupMoments& m) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const int64_t C = sv.C, B = static_cast<int64_t>(sv.blocks.size());
  std::vector<double> mean(B * C), m2(B * C);
  for_row_blocks(sv.blocks, sv.N, C, [&](int64_t b) {
    const RowBlock& blk = sv.blocks[b];
    kt.col_moments(sv.x.data(), C, blk.r0, blk.r1, 0, C, mean.data() + b * C, m2.data() + b * C);
  });
  for (int64_t b = 0; b < B; ++b) {
    const RowBlock& blk = sv.blocks[b];
    for (int64_t c = 0; c < C; ++c)
      merge_moments_at(m, blk.k * C + c, static_cast<double>(blk.r1 - blk.r0), mean[b * C + c], m2[b * C + c]);
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

// Step 4 for the channels [c0, c1) (S > 1): y = (x - mean) * a + b (relu: max(0, that)).
void normalize(const Saved& sv, const ScaleShift& f, int64_t c0, int64_t c1, bool relu, float* y) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * sv.C;
    for (int64_t c = c0; c < c1; ++c)
      kt.scale_shift(sv.x.data(), y, sv.C, sv.S, n0, n1, c, sv.mean[i0 + c], f.a[i0 + c], f.b[i0 + c], relu);
  }
}

// Step 4 for S == 1, by row blocks.
void normalize_by_rows(const Saved& sv, const ScaleShift& f, bool relu, float* y) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  for_row_blocks(sv.blocks, sv.N, sv.C, [&](int64_t b) {
    const RowBlock& blk = sv.blocks[b];
    const int64_t i0 = blk.k * sv.C;
    kt.col_scale_shift(sv.x.data(), y, sv.C, blk.r0, blk.r1, 0, sv.C, sv.mean.data() + i0, f.a.data() + i0,
                       f.b.data() + i0, relu);
  });
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
  if (S == 1) {  // steps 1 and 4 by row blocks, steps 2 and 3 for all channels between them
    if (!sv.fixed) {
      partial_moments_by_rows(sv, moments);
      if (spec.combine_moments) spec.combine_moments(moments);
    }
    for (int64_t c = 0; c < C; ++c) fold(sv, moments, spec, gamma, beta, c, f);
    normalize_by_rows(sv, f, spec.relu, y.data());
  } else if (sv.fixed) {
    for_channels(N, C, S, fold_and_normalize);
  } else if (!spec.combine_moments) {  // one pass per channel while it is in cache
    for_channels(N, C, S, [&](int64_t c0, int64_t c1) {
      partial_moments(sv, c0, c1, moments);
      fold_and_normalize(c0, c1);
    });
  } else {  // SyncBN: every channel's partial moments, the all-gather, then normalize
    for_channels(N, C, S, [&](int64_t c0, int64_t c1) { partial_moments(sv, c0, c1, moments); });
    spec.combine_moments(moments);
    for_channels(N, C, S, fold_and_normalize);
  }
  var = std::move(f.var);
  if (spec.relu) sv.relu_a = std::move(f.a), sv.relu_b = std::move(f.b);
  return y;
}

// ---------------------------------------------------------------- backward
struct Grads {
  GradSums sums;                             // [K * C]
  std::vector<float> dgamma, dbeta;          // [C]
  std::vector<float> a, dx_slope, dx_shift;  // [K * C]: step 4's constants
};

// Step 1's kernels for the channels [c0, c1) of every group (S > 1), measured from the float mean.
void raw_grad_sums(const Saved& sv, const float* dy, int64_t c0, int64_t c1, GradSums& sums) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * sv.C;
    for (int64_t c = c0; c < c1; ++c)
      kt.grad_sums(sv.x.data(), dy, sv.relu_a_at(i0 + c), sv.relu_b_at(i0 + c), sv.C, sv.S, n0, n1, c,
                   sv.mean[i0 + c], &sums.sum_dy[i0 + c], sv.mean_only ? nullptr : &sums.sum_dy_xmu[i0 + c]);
  }
}

// The same for S == 1: each row block's sums, then added into its group's in block order.
void raw_grad_sums_by_rows(const Saved& sv, const float* dy, GradSums& sums) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  const int64_t C = sv.C, B = static_cast<int64_t>(sv.blocks.size());
  std::vector<double> sum_dy(B * C), sum_dy_xmu(B * C);
  for_row_blocks(sv.blocks, sv.N, C, [&](int64_t b) {
    const RowBlock& blk = sv.blocks[b];
    kt.col_grad_sums(sv.x.data(), dy, sv.relu_a_at(blk.k * C), sv.relu_b_at(blk.k * C), C, blk.r0, blk.r1, 0, C,
                     sv.mean.data() + blk.k * C, sum_dy.data() + b * C, sum_dy_xmu.data() + b * C);
  });
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i0 = sv.blocks[b].k * C;
    for (int64_t c = 0; c < C; ++c) {
      sums.sum_dy[i0 + c] += sum_dy[b * C + c];
      sums.sum_dy_xmu[i0 + c] += sum_dy_xmu[b * C + c];
    }
  }
}

// Steps 1 (end) and 2 for the channels [c0, c1): the sums measured from mean + mean_lo, this
// worker's dgamma and dbeta.
void finish_grad_sums(const Saved& sv, int64_t c0, int64_t c1, Grads& g) {
  GradSums& sums = g.sums;
  for (int64_t c = c0; c < c1; ++c) {
    double dg = 0.0, db = 0.0;
    for (int64_t k = 0; k < sv.K; ++k) {
      const int64_t i = k * sv.C + c;
      sums.sum_dy_xmu[i] -= static_cast<double>(sv.mean_lo[i]) * sums.sum_dy[i];
      const double sum_dy_xhat = sums.sum_dy_xmu[i] * sv.rstd[i];
      db += sums.sum_dy[i];
      dg += sv.r[i] * sum_dy_xhat + sv.d[i] * sums.sum_dy[i];  // dgamma = sum dy * (xhat * r + d)
    }
    g.dgamma[c] = static_cast<float>(dg);
    g.dbeta[c] = static_cast<float>(db);
  }
}

// Step 4's constants for the channels [c0, c1) of every group: dx = dy * a + (x - mean) *
// dx_slope + dx_shift is a * (dy - sum_dy / M - xhat * sum_dy_xhat / M).
void grad_input_constants(const Saved& sv, const float* gamma, int64_t c0, int64_t c1, Grads& grads) {
  const GradSums& sums = grads.sums;
  for (int64_t k = 0; k < sv.K; ++k) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i = k * sv.C + c;
      const double M = sv.count[i], rstd = sv.rstd[i], g = (gamma ? gamma[c] : 1.0f) * sv.r[i];
      const double a_i = sv.mean_only ? 1.0 : g * rstd;  // = forward's a
      const double sum_dy_xhat = sums.sum_dy_xmu[i] * rstd;
      grads.a[i] = static_cast<float>(a_i);
      grads.dx_slope[i] = sv.fixed || sv.mean_only ? 0.0f : static_cast<float>(-a_i * rstd * sum_dy_xhat / M);
      grads.dx_shift[i] = sv.fixed ? 0.0f : static_cast<float>(-a_i * sums.sum_dy[i] / M);
      grads.dx_shift[i] -= sv.mean_lo[i] * grads.dx_slope[i];
    }
  }
}

// Step 4 for the channels [c0, c1) (S > 1), constants computed.
void grad_input(const Saved& sv, const float* dy, int64_t c0, int64_t c1, const Grads& g, float* dx) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  for (int64_t k = 0; k < sv.K; ++k) {
    const int64_t n0 = sv.groups[k], n1 = sv.groups[k + 1], i0 = k * sv.C;
    for (int64_t c = c0; c < c1; ++c)
      kt.grad_input(sv.x.data(), dy, sv.relu_a_at(i0 + c), sv.relu_b_at(i0 + c), dx, sv.C, sv.S, n0, n1, c,
                    sv.mean[i0 + c], g.a[i0 + c], g.dx_slope[i0 + c], g.dx_shift[i0 + c]);
  }
}

// Step 4 for S == 1, by row blocks.
void grad_input_by_rows(const Saved& sv, const float* dy, const Grads& g, float* dx) {
  const ChannelNormKernelTable& kt = channel_norm_kernels();
  for_row_blocks(sv.blocks, sv.N, sv.C, [&](int64_t b) {
    const RowBlock& blk = sv.blocks[b];
    const int64_t i0 = blk.k * sv.C;
    kt.col_grad_input(sv.x.data(), dy, sv.relu_a_at(i0), sv.relu_b_at(i0), dx, sv.C, blk.r0, blk.r1, 0, sv.C,
                      sv.mean.data() + i0, g.a.data() + i0, g.dx_slope.data() + i0, g.dx_shift.data() + i0);
  });
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
  auto sums = [&](int64_t c0, int64_t c1) {  // steps 1 and 2 (S > 1)
    raw_grad_sums(sv, dy, c0, c1, g.sums);
    finish_grad_sums(sv, c0, c1, g);
  };
  auto input_grad = [&](int64_t c0, int64_t c1) {  // step 4 (S > 1)
    grad_input_constants(sv, gamma, c0, c1, g);
    grad_input(sv, dy, c0, c1, g, dx.data());
  };
  if (S == 1) {  // steps 1 and 4 by row blocks, the rest for all channels between them
    raw_grad_sums_by_rows(sv, dy, g.sums);
    finish_grad_sums(sv, 0, C, g);
    if (sv.combine_grad_sums) sv.combine_grad_sums(g.sums);
    if (need_dx) {
      grad_input_constants(sv, gamma, 0, C, g);
      grad_input_by_rows(sv, dy, g, dx.data());
    }
  } else if (!sv.combine_grad_sums) {  // one pass per channel while it is in cache
    for_channels(N, C, S, [&](int64_t c0, int64_t c1) {
      sums(c0, c1);
      if (need_dx) input_grad(c0, c1);
    });
  } else {  // SyncBN: every channel's sums, the all-reduce (on every worker), then dx
    for_channels(N, C, S, sums);
    sv.combine_grad_sums(g.sums);
    if (need_dx) for_channels(N, C, S, input_grad);
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
  if (sv->S == 1) sv->blocks = row_blocks(sv->groups, C);
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
