// Tests of the tensor and the autograd engine itself (views, accumulation, graph freeing).
#include <catch2/catch.hpp>

#include <cmath>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"

using namespace nl;

TEST_CASE("views share storage and copies do not", "[tensor]") {
  Tensor a = Tensor::from_vector({2, 3}, {0, 1, 2, 3, 4, 5});
  Tensor t = a.transpose(0, 1);
  REQUIRE(t.shape() == Shape{3, 2});
  REQUIRE(!t.is_contiguous());
  REQUIRE(t.same_storage(a));
  REQUIRE(t.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor c = t.contiguous();
  REQUIRE(!c.same_storage(a));
  a.data()[1] = 10;
  REQUIRE(t.at({1, 0}) == 10);
  REQUIRE(c.at({1, 0}) == 1);
  REQUIRE(a.slice(1, 1, 3).to_vector() == std::vector<float>{10, 2, 4, 5});
  REQUIRE(a.reshape({3, 2}).at({2, 1}) == 5);
  REQUIRE_THROWS_WITH(a.view({4, 2}), Catch::Contains("[4, 2]") && Catch::Contains("6 elements"));
}

TEST_CASE("gradients accumulate across uses and across backward calls", "[autograd]") {
  Tensor x = Tensor::from_vector({3}, {1, 2, 3}).set_requires_grad();
  Tensor y = sum(mul(x, x));  // dy/dx = 2x, x used twice in one op
  y.backward();
  REQUIRE(x.grad().to_vector() == std::vector<float>{2, 4, 6});
  sum(x).backward();  // accumulates +1
  REQUIRE(x.grad().to_vector() == std::vector<float>{3, 5, 7});
  x.zero_grad();
  REQUIRE(!x.grad().defined());
}

TEST_CASE("a gradient passed on unchanged is adopted, never aliased where it must not be", "[autograd]") {
  // add hands its g to both inputs: the first adopts the buffer, the second gets its own copy.
  Tensor a = Tensor::from_vector({3}, {1, 2, 3}).set_requires_grad();
  Tensor b = Tensor::from_vector({3}, {4, 5, 6}).set_requires_grad();
  const Tensor w = Tensor::from_vector({3}, {1, 10, 100});
  sum(mul(add(a, b), w)).backward();
  REQUIRE(a.grad().to_vector() == std::vector<float>{1, 10, 100});
  REQUIRE(b.grad().to_vector() == std::vector<float>{1, 10, 100});
  CHECK(!a.grad().same_storage(b.grad()));
  a.grad().data()[0] = 7;  // what the optimizer may do to one gradient leaves the other alone
  CHECK(b.grad().to_vector() == std::vector<float>{1, 10, 100});
  // One tensor as both inputs: 2g (g added into the adopted g), and three uses: 3g.
  Tensor x = Tensor::from_vector({2}, {1, 2}).set_requires_grad();
  sum(mul(add(x, x), w.slice(0, 0, 2))).backward();
  REQUIRE(x.grad().to_vector() == std::vector<float>{2, 20});
  x.zero_grad();
  sum(mul(add(add(x, x), x), w.slice(0, 0, 2))).backward();
  REQUIRE(x.grad().to_vector() == std::vector<float>{3, 30});
  // The caller's seed of a non-leaf root is never adopted (it stays the caller's).
  Tensor z = Tensor::from_vector({2}, {1, 2}).set_requires_grad();
  const Tensor seed = Tensor::from_vector({2}, {5, 6});
  add(z, z).backward(seed);
  REQUIRE(z.grad().to_vector() == std::vector<float>{10, 12});
  CHECK(seed.to_vector() == std::vector<float>{5, 6});
  CHECK(!z.grad().same_storage(seed));
}

TEST_CASE("no_grad and detach record nothing", "[autograd]") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  {
    NoGradGuard guard;
    REQUIRE(!add(x, x).requires_grad());
  }
  REQUIRE(add(x, x).requires_grad());
  REQUIRE(!x.detach().requires_grad());
  REQUIRE(x.detach().same_storage(x));
}

TEST_CASE("the graph is freed after backward", "[autograd]") {
  Tensor x = Tensor::ones({4}).set_requires_grad();
  Tensor h = exp(x);
  Tensor y = sum(h);
  std::weak_ptr<TensorImpl> intermediate = h.impl();
  h = Tensor();
  REQUIRE(!intermediate.expired());  // kept alive by y's graph
  y.backward();
  REQUIRE(intermediate.expired());   // backward released it
  REQUIRE(y.is_leaf());
}

TEST_CASE("broadcasting add/mul/div and view ops pass gradcheck", "[autograd][gradcheck]") {
  Generator gen(7);
  Tensor a = randn({2, 3, 4}, gen).set_requires_grad();
  Tensor b = randn({3, 1}, gen).set_requires_grad();
  Tensor c = add(rand({1, 4}, gen), 0.5f).detach().set_requires_grad();
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) {
        Tensor t = div(mul(add(in[0], in[1]), in[1]), in[2]);
        return sum(t.permute({2, 0, 1}).slice(0, 1, 4, 2), {1});
      },
      {a, b, c});
  INFO(r.report);
  REQUIRE(r.ok);
}

TEST_CASE("seeded generators repeat", "[random]") {
  Generator g1(42), g2(42), g3(43);
  REQUIRE(randn({8}, g1).to_vector() == randn({8}, g2).to_vector());
  REQUIRE(randn({8}, g1).to_vector() != randn({8}, g3).to_vector());
}

TEST_CASE("grad_tap sees the gradient summed over the tapped uses and hands it on unchanged", "[autograd]") {
  Generator gen(3);
  const Tensor x0 = randn({4, 5}, gen), w = randn({4, 5}, gen);
  // Two uses of x, one tapped: x's gradient is the same bits with and without the tap.
  auto loss = [&](const Tensor& x, const Tensor& used) { return sum(exp(used) * w) + sum(x * 3.0f); };
  Tensor a = x0.clone().set_requires_grad(true);
  loss(a, a).backward();
  Tensor b = x0.clone().set_requires_grad(true);
  Tensor seen;
  int calls = 0;
  const Tensor tapped = grad_tap(b, [&](const Tensor& g) {
    seen = g.clone();
    ++calls;
  });
  CHECK(tapped.to_vector() == b.to_vector());
  loss(b, tapped).backward();  // the second use of x (sum(x * 3)) is not tapped
  CHECK(calls == 1);
  CHECK(b.grad().to_vector() == a.grad().to_vector());  // the same bits
  const std::vector<float> g = seen.to_vector(), xv = x0.to_vector(), wv = w.to_vector();
  for (size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(std::exp(xv[i]) * wv[i]));  // without the 3

  // Several tapped uses: the tap sees their sum. x's gradient is then summed in another order
  // (tapped uses first, then the others), equal up to rounding, not necessarily in every bit.
  Tensor c = x0.clone().set_requires_grad(true), d = x0.clone().set_requires_grad(true);
  (sum(c * w) + sum(c * c) + sum(c * 3.0f)).backward();
  const Tensor td = grad_tap(d, [&](const Tensor& gd) { seen = gd.clone(); });
  (sum(td * w) + sum(td * td) + sum(d * 3.0f)).backward();
  const std::vector<float> gc = c.grad().to_vector(), gd = d.grad().to_vector(), s = seen.to_vector();
  for (size_t i = 0; i < gc.size(); ++i) {
    CHECK(gd[i] == Approx(gc[i]).epsilon(1e-6));
    CHECK(s[i] == Approx(wv[i] + 2.0f * xv[i]).epsilon(1e-6));
  }
  NoGradGuard ng;
  CHECK(grad_tap(b, [](const Tensor&) {}).impl() == b.impl());  // no graph: x itself
}
