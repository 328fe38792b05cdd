// Tests of reductions, softmax/log_softmax and concat (core/ops_reduce.cpp, ops_shape.cpp):
// every dim subset against a naive double loop, stability cases, PyTorch 1.13 values pasted
// in, gradchecks (incl. non-contiguous inputs and size-1 dims), error messages.
#include <catch2/catch.hpp>

#include <cmath>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "tests/support/require_gradcheck.hpp"

using namespace nl;
using nl::test::require_gradcheck;

namespace {

void require_close(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-5) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << " want " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

// Naive sum over `mask`ed dims of a contiguous 4-d tensor, in double, keepdim layout.
std::vector<double> naive_sum(const Tensor& x, const std::vector<bool>& mask) {
  const Shape s = x.shape();
  Shape o = s;
  for (int d = 0; d < 4; ++d)
    if (mask[d]) o[d] = 1;
  std::vector<double> out(shape_numel(o), 0.0);
  const auto v = x.to_vector();
  int64_t i = 0;
  for (int64_t a = 0; a < s[0]; ++a)
    for (int64_t b = 0; b < s[1]; ++b)
      for (int64_t c = 0; c < s[2]; ++c)
        for (int64_t d = 0; d < s[3]; ++d, ++i) {
          const int64_t idx[4] = {mask[0] ? 0 : a, mask[1] ? 0 : b, mask[2] ? 0 : c, mask[3] ? 0 : d};
          out[((idx[0] * o[1] + idx[1]) * o[2] + idx[2]) * o[3] + idx[3]] += v[i];
        }
  return out;
}

}  // namespace

TEST_CASE("sum over every subset of dims matches a naive double loop", "[reduce]") {
  Generator gen(1);
  for (const Shape& shape : {Shape{3, 4, 5, 6}, Shape{2, 1, 7, 1}, Shape{1, 5, 1, 33}}) {
    Tensor x = randn(shape, gen);
    for (int m = 1; m < 16; ++m) {
      std::vector<bool> mask(4);
      std::vector<int64_t> dims;
      for (int d = 0; d < 4; ++d)
        if ((mask[d] = (m >> d) & 1)) dims.push_back(d);
      INFO("shape " << shape_str(shape) << " mask " << m);
      require_close(sum(x, dims, true).to_vector(), naive_sum(x, mask));
      require_close(sum(x.transpose(1, 3).contiguous().transpose(1, 3), dims, true).to_vector(), naive_sum(x, mask));
    }
  }
  Tensor x = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(sum(x).to_vector() == std::vector<float>{21});
  REQUIRE(sum(x).dim() == 0);
  REQUIRE(sum(x, {0}).to_vector() == std::vector<float>{5, 7, 9});
  REQUIRE(sum(x, {-1}, true).shape() == Shape{2, 1});
  REQUIRE(sum(x, {1}).to_vector() == std::vector<float>{6, 15});
  REQUIRE(mean(x, {0, 1}).item() == 3.5f);
  REQUIRE(mean(x, {1}).to_vector() == std::vector<float>{2, 5});
}

TEST_CASE("long sums use the chunked and column paths correctly", "[reduce]") {
  Generator gen(2);
  Tensor x = rand({3, 100001}, gen);  // rows longer than one chunk
  require_close(sum(x, {1}).to_vector(), naive_sum(x.reshape({3, 100001, 1, 1}), {false, true, true, true}), 1e-6);
  Tensor c = rand({5000, 1500}, gen);  // bias-gradient shape: columns wider than a block
  require_close(sum(c, {0}).to_vector(), naive_sum(c.reshape({5000, 1500, 1, 1}), {true, false, true, true}), 1e-6);
  // A sum of 2^24 + more ones is exact in double accumulation (float would stop at 2^24).
  REQUIRE(sum(Tensor::ones({(1 << 24) + 1000})).item() == 16778216.0f);
}

TEST_CASE("var is two-pass, unbiased by default, and matches PyTorch", "[reduce]") {
  Tensor x = Tensor::from_vector({2, 3}, {1, 2, 4, 3, 5, 9});
  // torch.var(x, 0); torch.var(x, 1, unbiased=False)
  require_close(var(x, {0}).to_vector(), {2.0, 4.5, 12.5});
  require_close(var(x, {1}, false).to_vector(), {1.5555555820465088, 6.222222328186035});
  REQUIRE(var(x, {1}, true, true).shape() == Shape{2, 1});
  // Mean 2000, spread 1e-2: E[x^2] - E[x]^2 would cancel to garbage in float.
  Generator gen(3);
  Tensor big = add(mul(randn({4096}, gen), 0.01f), 2000.0f);
  const auto v = big.to_vector();
  double m = 0, s = 0;
  for (float f : v) m += f;
  m /= v.size();
  for (float f : v) s += (f - m) * (f - m);
  REQUIRE(var(big).item() == Approx(s / (v.size() - 1)).epsilon(1e-4));
}

TEST_CASE("max returns values and sends the gradient to the first maximum", "[reduce]") {
  Tensor x = Tensor::from_vector({2, 4}, {1, 3, 3, 2, -1, -5, -1, -2}).set_requires_grad();
  Tensor m = max(x, 1);
  REQUIRE(m.to_vector() == std::vector<float>{3, -1});
  REQUIRE(max(x, 0, true).shape() == Shape{1, 4});
  REQUIRE(max(x, 0).to_vector() == std::vector<float>{1, 3, 3, 2});
  sum(mul(m, Tensor::from_vector({2}, {10, 20}))).backward();
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 10, 0, 0, 20, 0, 0, 0});
  Tensor n = Tensor::from_vector({3}, {1, NAN, 2});
  REQUIRE(std::isnan(max(n, 0).item()));  // NaN propagates, as in PyTorch
  Generator gen(4);
  Tensor r = randn({3, 4, 5}, gen).set_requires_grad();
  for (int64_t d : {0, 1, 2, -1})
    require_gradcheck([d](const std::vector<Tensor>& in) { return max(in[0].transpose(0, 2), d); }, {r});
}

TEST_CASE("softmax and log_softmax match PyTorch, are stable, and pass gradcheck", "[reduce][softmax]") {
  // torch.softmax / log_softmax(x, 1), rows [1,2,3] and [1000,1001,1002]
  Tensor x = Tensor::from_vector({2, 3}, {1, 2, 3, 1000, 1001, 1002});
  const std::vector<double> sm = {0.09003057330846786, 0.2447284758090973, 0.6652409434318542};
  const std::vector<double> lsm = {-2.4076058864593506, -1.4076058864593506, -0.40760594606399536};
  std::vector<double> sm2 = sm, lsm2 = lsm;
  sm2.insert(sm2.end(), sm.begin(), sm.end());
  lsm2.insert(lsm2.end(), lsm.begin(), lsm.end());
  require_close(softmax(x, 1).to_vector(), sm2);
  require_close(log_softmax(x, -1).to_vector(), lsm2);
  // The same along dim 0 of the transpose (the strided, column-block path).
  require_close(softmax(x.transpose(0, 1).contiguous(), 0).transpose(0, 1).contiguous().to_vector(), sm2);
  require_close(log_softmax(x.transpose(0, 1).contiguous(), 0).transpose(0, 1).contiguous().to_vector(), lsm2);
  REQUIRE(std::isinf(log_softmax(Tensor::from_vector({2}, {0, -1e30f}), 0).to_vector()[1]) == false);

  Generator gen(5);
  Tensor r = mul(randn({3, 4, 300}, gen), 3.0f).detach();  // 300 > one column block
  for (int64_t d : {0, 1, 2}) {
    INFO("dim " << d);
    // Rows sum to one; log_softmax is log of softmax.
    Tensor s = softmax(r, d);
    for (float v : sum(s, {d}).to_vector()) REQUIRE(v == Approx(1.0f).epsilon(1e-5));
    const auto ls = log_softmax(r, d).to_vector(), sv = s.to_vector();
    for (size_t i = 0; i < ls.size(); ++i) REQUIRE(std::exp(ls[i]) == Approx(sv[i]).epsilon(1e-5).margin(1e-30));
  }
  Tensor g = randn({3, 4, 5}, gen).set_requires_grad();
  for (int64_t d : {0, 1, 2}) {
    require_gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {g});
    require_gradcheck([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {g});
    require_gradcheck([d](const std::vector<Tensor>& in) { return softmax(in[0].transpose(0, 2), d); }, {g});
  }
}

TEST_CASE("sum, mean and var pass gradcheck incl. broadcast-shaped and non-contiguous inputs", "[reduce][gradcheck]") {
  Generator gen(6);
  Tensor x = randn({3, 1, 4, 5}, gen).set_requires_grad();
  for (const std::vector<int64_t>& dims : {std::vector<int64_t>{}, {0}, {1}, {0, 2}, {1, 3}, {-1}}) {
    for (bool keep : {false, true}) {
      require_gradcheck([&](const std::vector<Tensor>& in) { return sum(in[0], dims, keep); }, {x});
      require_gradcheck([&](const std::vector<Tensor>& in) { return mean(in[0].transpose(0, 3), dims, keep); }, {x});
      require_gradcheck([&](const std::vector<Tensor>& in) { return var(in[0], dims, true, keep); }, {x});
      require_gradcheck([&](const std::vector<Tensor>& in) { return var(in[0].slice(2, 0, 4, 2), dims, false, keep); }, {x});
    }
  }
}

TEST_CASE("concat joins along any dim and slices the gradient back", "[shape]") {
  Tensor a = Tensor::from_vector({2, 2}, {1, 2, 3, 4}), b = Tensor::from_vector({2, 1}, {5, 6});
  REQUIRE(concat({a, b}, 1).to_vector() == std::vector<float>{1, 2, 5, 3, 4, 6});
  REQUIRE(concat({a, a}, 0).to_vector() == std::vector<float>{1, 2, 3, 4, 1, 2, 3, 4});
  REQUIRE(concat({a, b.transpose(0, 1)}, 0).shape() == Shape{3, 2});
  REQUIRE(concat({a, Tensor::zeros({2, 0})}, -1).to_vector() == a.to_vector());
  Generator gen(7);
  Tensor x = randn({2, 3, 4}, gen).set_requires_grad(), y = randn({2, 5, 4}, gen).set_requires_grad();
  Tensor z = randn({4, 3, 2}, gen).set_requires_grad();
  require_gradcheck([](const std::vector<Tensor>& in) { return concat({in[0], in[1], in[0]}, 1); }, {x, y});
  require_gradcheck([](const std::vector<Tensor>& in) { return concat({in[0], in[1].transpose(0, 2)}, 1); }, {x, z});
  require_gradcheck([](const std::vector<Tensor>& in) { return concat({in[0], in[0]}, -1); }, {x});
}

TEST_CASE("reductions and concat reject bad dims and shapes with nl::Error", "[reduce][errors]") {
  Tensor x = Tensor::zeros({2, 3});
  REQUIRE_THROWS_AS(sum(x, {2}), Error);
  REQUIRE_THROWS_WITH(sum(x, {2}), Catch::Contains("sum"));
  REQUIRE_THROWS_WITH(sum(x, {1, -1}), Catch::Contains("sum") && Catch::Contains("twice"));
  REQUIRE_THROWS_WITH(var(x, {5}), Catch::Contains("var"));
  REQUIRE_THROWS_WITH(max(x, -3), Catch::Contains("max"));
  REQUIRE_THROWS_WITH(max(Tensor::zeros({2, 0}), 1), Catch::Contains("max") && Catch::Contains("[2, 0]"));
  REQUIRE_THROWS_WITH(softmax(x, 2), Catch::Contains("softmax"));
  REQUIRE_THROWS_WITH(log_softmax(x, -3), Catch::Contains("log_softmax"));
  REQUIRE_THROWS_WITH(concat({x, Tensor::zeros({3, 3})}, 1),
                      Catch::Contains("concat") && Catch::Contains("[2, 3]") && Catch::Contains("[3, 3]"));
  REQUIRE_THROWS_WITH(concat({x, Tensor::zeros({2, 3, 1})}, 0), Catch::Contains("concat") && Catch::Contains("[2, 3, 1]"));
  REQUIRE_THROWS_WITH(concat({}, 0), Catch::Contains("concat"));
  REQUIRE_THROWS_WITH(concat({x}, 2), Catch::Contains("concat"));
}
