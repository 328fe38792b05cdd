// normlab layers: SyncBatchNorm (see sync_batch_norm.hpp for the math; names match).
// Plain double-precision loops per channel: the layer is as much a statement of the
// distributed algorithm as a kernel, and its cost next to the all-reduces is small.
#include "layers/norm/sync_batch_norm.hpp"

#include <cmath>
#include <vector>

#include "core/autograd.hpp"
#include "core/distributed.hpp"

namespace nl {

SyncBatchNorm::SyncBatchNorm(int64_t num_features, int dims_, BatchNormOptions options_)
    : BatchNorm(num_features, dims_, options_) {
  NL_CHECK(options_.stat_batch == 0, name(), ": statistics groups (stat_batch ", options_.stat_batch,
           ") do not apply; SyncBatchNorm normalizes over the global batch");
}

std::string SyncBatchNorm::name() const { return detail::concat("SyncBatchNorm", dims, "d(", num_features(), ")"); }

Tensor SyncBatchNorm::forward(const Tensor& x_in) {
  if (!is_training()) return BatchNorm::forward(x_in);
  const auto layout = bn_detail::channel_layout(x_in, num_features(), dims, name());
  const int64_t N = layout[0], C = layout[1], S = layout[2];
  const Tensor x = x_in.contiguous();
  const float* xd = x.data();
  auto at = [C, S](int64_t n, int64_t c) { return (n * C + c) * S; };  // first value of plane (n, c)
  dist::Communicator& comm = dist::world();
  const int K = comm.size();

  // Local moments, [count, mean, m2] per channel.
  std::vector<double> local(3 * C);
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) sum += xd[at(n, c) + s];
    const double count = static_cast<double>(N * S), mean_r = count > 0 ? sum / count : 0.0;
    double m2_r = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) m2_r += (xd[at(n, c) + s] - mean_r) * (xd[at(n, c) + s] - mean_r);
    local[3 * c] = count, local[3 * c + 1] = mean_r, local[3 * c + 2] = m2_r;
  }
  // Every rank's moments, merged in rank order.
  std::vector<double> all(3 * C * K);
  comm.allgather(local.data(), 3 * C, all.data());
  std::vector<double> M(C, 0.0), mean(C, 0.0), m2(C, 0.0);
  for (int r = 0; r < K; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const double* m = &all[(r * C + c) * 3];
      const double count = M[c] + m[0];
      if (m[0] == 0) continue;
      const double delta = m[1] - mean[c];
      mean[c] += delta * m[0] / count;
      m2[c] += m[2] + delta * delta * M[c] * m[0] / count;
      M[c] = count;
    }
  NL_CHECK(M[0] > 1, name(), ": Expected more than 1 value per channel when training (the global batch has ",
           M[0], ")");
  std::vector<float> rstd(C), mean_f(C), var_unbiased(C);
  for (int64_t c = 0; c < C; ++c) {
    const double var = m2[c] / M[c];
    rstd[c] = static_cast<float>(1.0 / std::sqrt(var + options.eps));
    mean_f[c] = static_cast<float>(mean[c]);
    var_unbiased[c] = static_cast<float>(m2[c] / (M[c] - 1));
  }
  const double share = static_cast<double>(N * S) / M[0];  // w_r

  Tensor y = Tensor::empty(x.shape());
  float* yd = y.data();
  const float* gamma = weight.defined() ? weight.data() : nullptr;
  const float* beta = bias.defined() ? bias.data() : nullptr;
  for (int64_t c = 0; c < C; ++c) {
    const float a = rstd[c] * (gamma ? gamma[c] : 1.0f), b = beta ? beta[c] : 0.0f;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) yd[at(n, c) + s] = (xd[at(n, c) + s] - mean_f[c]) * a + b;
  }
  update_running_stats(0, mean_f.data(), var_unbiased.data());

  const Tensor w = weight, bi = bias;
  return record(y, "sync_batch_norm", {x_in, weight, bias},
                [x, x_in, w, bi, mean_f, rstd, share, N, C, S, at](const Tensor& gy_in) {
                  const Tensor gy = gy_in.contiguous();
                  const float* dy = gy.data();
                  const float* xd = x.data();
                  const double M = static_cast<double>(N * S) / share;
                  // This rank's sums, then their weighted all-reduce.
                  std::vector<double> sums(2 * C, 0.0);  // [sum_dy | sum_dy_xhat]
                  for (int64_t c = 0; c < C; ++c)
                    for (int64_t n = 0; n < N; ++n)
                      for (int64_t s = 0; s < S; ++s) {
                        const int64_t i = at(n, c) + s;
                        sums[c] += dy[i];
                        sums[C + c] += dy[i] * (xd[i] - mean_f[c]) * rstd[c];
                      }
                  if (w.defined() && w.requires_grad()) {
                    Tensor dgamma = Tensor::empty({C}), dbeta = Tensor::empty({C});
                    for (int64_t c = 0; c < C; ++c) {
                      dgamma.data()[c] = static_cast<float>(sums[C + c]);
                      dbeta.data()[c] = static_cast<float>(sums[c]);
                    }
                    accumulate_grad(w, dgamma);
                    if (bi.defined() && bi.requires_grad()) accumulate_grad(bi, dbeta);
                  }
                  std::vector<double> total(2 * C);
                  for (int64_t i = 0; i < 2 * C; ++i) total[i] = share * sums[i];
                  dist::world().allreduce_sum(total.data(), 2 * C);
                  if (!x_in.requires_grad()) return;
                  Tensor dx = Tensor::empty(x.shape());
                  float* dxd = dx.data();
                  const float* gamma = w.defined() ? w.data() : nullptr;
                  for (int64_t c = 0; c < C; ++c) {
                    const double total_dy = total[c] / share, total_dy_xhat = total[C + c] / share;
                    const double k = rstd[c] * (gamma ? gamma[c] : 1.0f) / M;
                    for (int64_t n = 0; n < N; ++n)
                      for (int64_t s = 0; s < S; ++s) {
                        const int64_t i = at(n, c) + s;
                        const double xhat = (xd[i] - mean_f[c]) * rstd[c];
                        dxd[i] = static_cast<float>(k * (M * dy[i] - total_dy - xhat * total_dy_xhat));
                      }
                  }
                  accumulate_grad(x_in, dx.view(x_in.shape()));
                });
}

}  // namespace nl
