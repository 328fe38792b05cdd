// normlab layers: Ghost BatchNorm. The math is in ghost_batch_norm.hpp; the fused op is
// BatchNorm's with one set of statistics per virtual batch (bn_detail::fused_batch_norm).
#include "layers/norm/ghost_batch_norm.hpp"

namespace nl {

GhostBatchNorm::GhostBatchNorm(int64_t num_features, int64_t ghost_size_, int dims_, BatchNormOptions options_)
    : BatchStatNorm(num_features, 1, options_.momentum, options_.track_running_stats, true),
      ghost_size(ghost_size_), dims(dims_), options(options_) {
  NL_CHECK(dims == 1 || dims == 2, "GhostBatchNorm: dims must be 1 or 2, got ", dims);
  NL_CHECK(ghost_size >= 2, "GhostBatchNorm: ghost batch size must be >= 2, got ", ghost_size);
  NL_CHECK(options.eps > 0.0f, name(), ": eps must be > 0, got ", options.eps);
  if (options.affine) {
    weight = register_parameter("weight", Tensor::ones({num_features}));
    bias = register_parameter("bias", Tensor::zeros({num_features}));
  }
}

std::string GhostBatchNorm::name() const {
  return detail::concat("GhostBatchNorm", dims, "d(", num_features(), ", ghost=", ghost_size, ")");
}

std::vector<int64_t> GhostBatchNorm::chunk_bounds(int64_t n) const {
  std::vector<int64_t> b{0};
  for (int64_t s = ghost_size; s < n; s += ghost_size) b.push_back(s);
  // a leftover of one sample joins the chunk before it
  if (b.size() > 1 && n - b.back() == 1) b.pop_back();
  b.push_back(n);
  return b;
}

static std::vector<int64_t> reduce_dims(const Tensor& x) {
  std::vector<int64_t> red{0};
  for (int64_t d = 2; d < x.dim(); ++d) red.push_back(d);
  return red;
}

Tensor GhostBatchNorm::forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  if (!is_training() && tracks_running_stats())
    return bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, {0, N}, false, slot_mean(0), slot_var(0),
                                       nullptr, nullptr, "ghost_batch_norm_eval");
  const std::vector<int64_t> bounds = chunk_bounds(N);
  const int64_t K = static_cast<int64_t>(bounds.size()) - 1;
  for (int64_t k = 0; k < K; ++k)
    NL_CHECK((bounds[k + 1] - bounds[k]) * S > 1, name(),
             ": Expected more than 1 value per channel when training, got input size ", shape_str(x.shape()));
  bn_detail::FusedStats st;
  Tensor y = bn_detail::fused_batch_norm(x, C, weight, bias, options.eps, bounds, false, nullptr, nullptr,
                                         nullptr, &st, "ghost_batch_norm");
  if (is_training()) {
    std::vector<float> var_unbiased(C);
    for (int64_t k = 0; k < K; ++k) {  // one momentum update per virtual batch, in order
      const double M = static_cast<double>((bounds[k + 1] - bounds[k]) * S);
      for (int64_t c = 0; c < C; ++c) var_unbiased[c] = static_cast<float>(st.var[k * C + c] * (M / (M - 1)));
      update_running_stats(0, st.mean.data() + k * C, var_unbiased.data());
    }
  }
  return y;
}

// Composite: each virtual batch is selected with a 0/1 mask over N (no slicing op needed),
// normalized with its own statistics, and the masked results are summed.
Tensor GhostBatchNorm::reference_forward(const Tensor& x) {
  const auto l = bn_detail::channel_layout(x, num_features(), dims, name());
  const int64_t N = l[0], C = l[1], S = l[2];
  const Shape cs = bn_detail::channel_shape(C, x.dim());
  const auto red = reduce_dims(x);
  Tensor y;
  if (!is_training() && tracks_running_stats()) {
    y = (x - running_mean.view(cs)) * rsqrt(running_var.view(cs) + options.eps);
  } else {
    const std::vector<int64_t> bounds = chunk_bounds(N);
    Shape ms(x.dim(), 1);
    ms[0] = N;
    for (size_t k = 0; k + 1 < bounds.size(); ++k) {
      const int64_t nk = bounds[k + 1] - bounds[k];
      const float M = static_cast<float>(nk * S);
      NL_CHECK(M > 1, name(), ": Expected more than 1 value per channel when training, got input size ",
               shape_str(x.shape()));
      std::vector<float> mv(N, 0.0f);
      for (int64_t n = bounds[k]; n < bounds[k + 1]; ++n) mv[n] = 1.0f;
      const Tensor mask = Tensor::from_vector(ms, mv);
      const Tensor mean_k = sum(x * mask, red, true) * (1.0f / M);
      const Tensor xmu = (x - mean_k) * mask;
      const Tensor var_k = sum(xmu * xmu, red, true) * (1.0f / M);
      const Tensor yk = xmu * rsqrt(var_k + options.eps);
      y = y.defined() ? y + yk : yk;
      if (is_training()) {
        std::vector<float> m = mean_k.to_vector(), v = var_k.to_vector();
        for (auto& e : v) e = e * M / (M - 1);
        update_running_stats(0, m.data(), v.data());
      }
    }
  }
  if (options.affine) y = y * weight.view(cs) + bias.view(cs);
  return y;
}

}  // namespace nl
