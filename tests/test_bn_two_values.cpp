// Why BatchNorm collapses at statistics batch 2 on feature vectors (the README's main command):
// with M = 2 values per statistic, x_hat = +-1 whatever the two inputs are, so the output
// carries only their order, and the input gradient
//   dx = rstd / M * (M * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))
// vanishes for M = 2: with d = x1 - x2 it is dx1 = -dx2 = rstd * (dxhat1 - dxhat2) / 2 * eps / (d^2/4 + eps),
// about 4 eps (dxhat1 - dxhat2) / |d|^3: no gradient reaches the layers below unless the two
// values are within a few sqrt(eps) of each other. With 2 x H x W values per statistic (a conv
// feature map) neither happens. These tests pin both facts.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/norm/batch_norm.hpp"

using namespace nl;

namespace {
// [n, C] where rows 2k and 2k+1 differ by at least 0.5 in every feature (|d| >> sqrt(eps)).
Tensor separated_pairs(int64_t n, int64_t C, Generator& gen) {
  std::vector<float> v = randn({n, C}, gen).to_vector();
  for (int64_t k = 0; k + 1 < n; k += 2)
    for (int64_t c = 0; c < C; ++c) v[(k + 1) * C + c] = v[k * C + c] + 0.5f + std::fabs(v[(k + 1) * C + c]);
  return Tensor::from_vector({n, C}, v);
}

float max_abs(const Tensor& t) {
  float m = 0.0f;
  for (float v : t.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}
// Training-mode forward and backward of x through bn: every output is +-1 (gamma 1, beta 0) and
// the input gradient vanishes.
void check_collapse(BatchNorm& bn, Tensor x, Generator& gen) {
  bn.train();
  x.set_requires_grad();
  const Tensor y = bn.forward(x);
  for (float v : y.to_vector()) CHECK(std::fabs(std::fabs(v) - 1.0f) < 1e-3f);
  y.backward(randn(x.shape(), gen));
  CHECK(max_abs(x.grad()) < 1e-3f);
}
}  // namespace

TEST_CASE("bn_two_values: BatchNorm1d over 2 examples outputs +-1 and passes no gradient back") {
  Generator gen(3);
  BatchNorm bn(16, 1);
  check_collapse(bn, separated_pairs(2, 16, gen), gen);
  CHECK(max_abs(bn.weight.grad()) > 0.1f);  // gamma and beta still learn
}

TEST_CASE("bn_two_values: 2 examples of 8x8 feature maps keep their values and their gradient") {
  Generator gen(3);
  BatchNorm bn(4, 2);
  bn.train();
  const Tensor x = add(mul(randn({2, 4, 8, 8}, gen), 3.0f), 1.0f).set_requires_grad();
  const Tensor y = bn.forward(x);
  int64_t not_unit = 0;
  for (float v : y.to_vector()) not_unit += std::fabs(std::fabs(v) - 1.0f) > 0.05f;
  CHECK(not_unit > 400);  // of 512: a continuous output, not a sign
  y.backward(randn({2, 4, 8, 8}, gen));
  CHECK(max_abs(x.grad()) > 0.05f);
}

TEST_CASE("bn_two_values: statistics batch 2 inside a batch of 32 is the same collapse") {
  Generator gen(5);
  BatchNormOptions o;
  o.stat_batch = 2;
  BatchNorm bn(8, 1, o);
  check_collapse(bn, separated_pairs(32, 8, gen), gen);
}
