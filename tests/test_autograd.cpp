// Tests of the tensor and the autograd engine itself (views, accumulation, graph freeing).
#include <catch2/catch.hpp>

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
