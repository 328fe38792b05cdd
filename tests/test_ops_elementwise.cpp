// Tests of the elementwise ops (core/ops_elementwise.cpp): forward values by hand and against
// PyTorch 1.13 (values pasted below), gradchecks of every op on random, broadcast, size-1
// and non-contiguous inputs, the broadcast fast path against materialized inputs, errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "core/autograd.hpp"
#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"

using namespace nl;

namespace {

void require_close(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-6f) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << " want " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= tol * (1.0f + std::abs(want[i])));
  }
}

// Gradcheck op(x) on a contiguous input, a transposed view and a sliced view of it.
void check_unary(const std::function<Tensor(const Tensor&)>& op, Tensor x) {
  x.set_requires_grad();
  for (int variant = 0; variant < 3; ++variant) {
    INFO("variant " << variant << " (0 contiguous, 1 transposed, 2 sliced)");
    auto r = gradcheck(
        [&](const std::vector<Tensor>& in) {
          if (variant == 0) return op(in[0]);
          if (variant == 1) return op(in[0].transpose(0, 1));
          return op(in[0].slice(1, 1, 4, 2));
        },
        {x});
    INFO(r.report);
    REQUIRE(r.ok);
  }
}

}  // namespace

TEST_CASE("unary ops match hand-computed and PyTorch values", "[elementwise]") {
  Tensor x = Tensor::from_vector({7}, {-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f});
  require_close(relu(x).to_vector(), {0, 0, 0, 0, 0.5f, 1, 3});
  require_close(leaky_relu(x, 0.1f).to_vector(), {-0.3f, -0.1f, -0.05f, 0, 0.5f, 1, 3});
  require_close(abs(x).to_vector(), {3, 1, 0.5f, 0, 0.5f, 1, 3});
  require_close(clamp(x, -1.0f, 0.5f).to_vector(), {-1, -1, -0.5f, 0, 0.5f, 0.5f, 0.5f});
  require_close(neg(x).to_vector(), {3, 1, 0.5f, 0, -0.5f, -1, -3});
  require_close(pow(x, 2.0f).to_vector(), {9, 1, 0.25f, 0, 0.25f, 1, 9});
  require_close(pow(x, 3.0f).to_vector(), {-27, -1, -0.125f, 0, 0.125f, 1, 27});
  // torch.nn.functional.gelu / sigmoid / tanh (torch 1.13, float32)
  require_close(gelu(x).to_vector(), {-0.004049867391586304f, -0.1586552858352661f, -0.1542687863111496f, 0.0f,
                                      0.3457311987876892f, 0.8413447141647339f, 2.995950222015381f});
  require_close(sigmoid(x).to_vector(), {0.04742587317756678f, 0.2689414213699951f, 0.3775406687981454f, 0.5f,
                                         0.6224593312018546f, 0.7310585786300049f, 0.9525741268224334f});
  require_close(tanh(x).to_vector(), {-0.9950547536867305f, -0.7615941559557649f, -0.46211715726000974f, 0.0f,
                                      0.46211715726000974f, 0.7615941559557649f, 0.9950547536867305f});
  Tensor p = Tensor::from_vector({4}, {0.25f, 1.0f, 4.0f, 100.0f});
  require_close(sqrt(p).to_vector(), {0.5f, 1, 2, 10});
  require_close(rsqrt(p).to_vector(), {2, 1, 0.5f, 0.1f});
  require_close(log(p).to_vector(), {-1.3862943611198906f, 0, 1.3862943611198906f, 4.605170185988092f});
  require_close(exp(Tensor::from_vector({3}, {0.0f, 1.0f, -2.0f})).to_vector(), {1, 2.718281828459045f, 0.1353352832366127f});
}

TEST_CASE("gradients at kinks follow PyTorch's conventions", "[elementwise]") {
  auto grad_of = [](Tensor (*op)(const Tensor&), std::vector<float> v) {
    Tensor x = Tensor::from_vector({static_cast<int64_t>(v.size())}, v).set_requires_grad();
    sum(op(x)).backward();
    return x.grad().to_vector();
  };
  REQUIRE(grad_of(relu, {-1, 0, 2}) == std::vector<float>{0, 0, 1});
  REQUIRE(grad_of(abs, {-1, 0, 2}) == std::vector<float>{-1, 0, 1});
  Tensor x = Tensor::from_vector({5}, {-2, -1, 0, 1, 2}).set_requires_grad();
  sum(clamp(x, -1.0f, 1.0f)).backward();  // inclusive bounds pass the gradient
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 1, 1, 1, 0});
  Tensor z = Tensor::from_vector({2}, {0, 2}).set_requires_grad();
  sum(pow(z, 0.0f)).backward();  // d x^0 = 0, even at x = 0
  REQUIRE(z.grad().to_vector() == std::vector<float>{0, 0});
  // gelu'(x) from torch 1.13 autograd
  Tensor g = Tensor::from_vector({7}, {-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f}).set_requires_grad();
  sum(gelu(g)).backward();
  require_close(g.grad().to_vector(), {-0.011945605278015137f, -0.08331543207168579f, 0.1325049102306366f, 0.5f,
                                       0.867495059967041f, 1.083315372467041f, 1.0119456052780151f}, 1e-5f);
}

TEST_CASE("every unary op passes gradcheck on contiguous, transposed and sliced inputs", "[elementwise][gradcheck]") {
  Generator gen(11);
  auto normal = [&] { return randn({4, 5}, gen); };
  auto positive = [&] { return add(rand({4, 5}, gen), 0.5f).detach(); };
  check_unary([](const Tensor& t) { return neg(t); }, normal());
  check_unary([](const Tensor& t) { return exp(t); }, normal());
  check_unary([](const Tensor& t) { return log(t); }, positive());
  check_unary([](const Tensor& t) { return sqrt(t); }, positive());
  check_unary([](const Tensor& t) { return rsqrt(t); }, positive());
  check_unary([](const Tensor& t) { return pow(t, 2.0f); }, normal());
  check_unary([](const Tensor& t) { return pow(t, 1.5f); }, positive());
  check_unary([](const Tensor& t) { return pow(t, -0.5f); }, positive());
  check_unary([](const Tensor& t) { return abs(t); }, normal());
  check_unary([](const Tensor& t) { return clamp(t, -0.5f, 0.7f); }, normal());
  check_unary([](const Tensor& t) { return relu(t); }, normal());
  check_unary([](const Tensor& t) { return leaky_relu(t, 0.2f); }, normal());
  check_unary([](const Tensor& t) { return gelu(t); }, mul(normal(), 2.0f).detach());
  check_unary([](const Tensor& t) { return sigmoid(t); }, mul(normal(), 2.0f).detach());
  check_unary([](const Tensor& t) { return tanh(t); }, normal());
  check_unary([](const Tensor& t) { return mul(add(t, 1.5f), -2.0f); }, normal());
}

TEST_CASE("binary ops with broadcasting pass gradcheck", "[elementwise][gradcheck]") {
  Generator gen(5);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}},    {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {3, 1}},
      {{1}, {2, 3}},          {{}, {2, 3}},        {{2, 3, 1, 2}, {1, 3, 2, 1}}, {{5, 1}, {1, 1}}};
  for (const auto& [sa, sb] : shapes) {
    INFO("shapes " << shape_str(sa) << " and " << shape_str(sb));
    // Both away from 0 so div is well conditioned either way round (a negative, b positive).
    Tensor a = mul(add(rand(sa, gen), 0.5f), -1.5f).detach().set_requires_grad();
    Tensor b = add(rand(sb, gen), 0.5f).detach().set_requires_grad();
    for (auto op : {add, sub, mul, div}) {
      auto r = gradcheck([op](const std::vector<Tensor>& in) { return op(in[0], in[1]); }, {a, b});
      INFO(r.report);
      REQUIRE(r.ok);
      auto r2 = gradcheck([op](const std::vector<Tensor>& in) { return op(in[1], in[0]); }, {a, b});
      INFO(r2.report);
      REQUIRE(r2.ok);
    }
  }
  // Non-contiguous operands.
  Tensor a = randn({4, 3}, gen).set_requires_grad();
  Tensor b = randn({3, 6}, gen).set_requires_grad();
  auto r = gradcheck([](const std::vector<Tensor>& in) { return mul(in[0].transpose(0, 1), in[1].slice(1, 0, 6, 2).slice(1, 0, 1)); },
                     {a, b});
  INFO(r.report);
  REQUIRE(r.ok);
}

TEST_CASE("add_relu gives relu(a + b)'s bits, forward and backward, and passes gradcheck", "[elementwise][gradcheck]") {
  Generator gen(21);
  // 3 x 30000 elements: several pieces of the fused loop and, at 2 threads, a split across threads.
  Tensor a = randn({3, 30000}, gen).set_requires_grad(), b = randn({3, 30000}, gen).set_requires_grad();
  Tensor a2 = a.detach().clone().set_requires_grad(), b2 = b.detach().clone().set_requires_grad();
  Tensor weights = randn({3, 30000}, gen);  // a loss whose gradient differs per element
  Tensor fused = add_relu(a, b), composite = relu(a2 + b2);
  REQUIRE(fused.to_vector() == composite.to_vector());
  sum(mul(fused, weights)).backward();
  sum(mul(composite, weights)).backward();
  REQUIRE(a.grad().to_vector() == a2.grad().to_vector());
  REQUIRE(b.grad().to_vector() == b2.grad().to_vector());
  // One tensor as both inputs (a block whose shortcut is its input): twice the masked gradient.
  Tensor x = Tensor::from_vector({4}, {-2, -0.5f, 0.5f, 3}).set_requires_grad();
  sum(add_relu(x, x)).backward();
  REQUIRE(x.grad().to_vector() == std::vector<float>{0, 0, 2, 2});
  Tensor p = randn({2, 3, 4}, gen).set_requires_grad(), q = randn({2, 3, 4}, gen).set_requires_grad();
  auto r = gradcheck([](const std::vector<Tensor>& in) { return add_relu(in[0], in[1]); }, {p, q});
  INFO(r.report);
  REQUIRE(r.ok);
}

TEST_CASE("the broadcast fast path equals computing on materialized inputs", "[elementwise]") {
  Generator gen(9);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{64, 33}, {33}}, {{8, 16, 5, 7}, {16, 1, 1}}, {{3, 1, 70000}, {1, 2, 70000}}, {{1, 300000}, {300000, 1}},
      {{200000}, {}},   {{7, 9}, {7, 1}}};
  for (const auto& [sa, sb] : shapes) {
    INFO("shapes " << shape_str(sa) << " and " << shape_str(sb));
    Tensor a = randn(sa, gen), b = add(rand(sb, gen), 0.5f);
    if (shape_numel(broadcast_shapes(sa, sb, "test")) > 2000000) continue;
    const Shape out = broadcast_shapes(sa, sb, "test");
    Tensor am = a.expand(out).contiguous(), bm = b.expand(out).contiguous();
    for (auto op : {add, sub, mul, div}) {
      REQUIRE(op(a, b).to_vector() == op(am, bm).to_vector());
      REQUIRE(op(b, a).to_vector() == op(bm, am).to_vector());
    }
  }
  // Small check by hand: per-row and per-column broadcast.
  Tensor m = Tensor::from_vector({2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(sub(m, Tensor::from_vector({3}, {1, 1, 2})).to_vector() == std::vector<float>{0, 1, 1, 3, 4, 4});
  REQUIRE(div(Tensor::from_vector({2, 1}, {6, 12}), m).to_vector() == std::vector<float>{6, 3, 2, 3, 2.4f, 2});
}

TEST_CASE("bad shapes and arguments throw nl::Error naming the op and shapes", "[elementwise][errors]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  REQUIRE_THROWS_AS(add(a, b), Error);
  REQUIRE_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("[2, 3]") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(mul(a, Tensor::zeros({3, 2})), Catch::Contains("mul") && Catch::Contains("[3, 2]"));
  REQUIRE_THROWS_WITH(div(b, a), Catch::Contains("div") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(sub(a, b), Catch::Contains("sub"));
  REQUIRE_THROWS_WITH(add_relu(a, Tensor::zeros({1, 3})), Catch::Contains("add_relu") && Catch::Contains("[1, 3]"));
  REQUIRE_THROWS_WITH(clamp(a, 1.0f, -1.0f), Catch::Contains("clamp") && Catch::Contains("[2, 3]"));
}

TEST_CASE("saved outputs are detached: backward through a reused output works twice", "[elementwise][autograd]") {
  Tensor x = Tensor::from_vector({2}, {0.5f, -1.0f}).set_requires_grad();
  Tensor y = exp(x);
  Tensor z = add(sum(mul(y, y)), sum(tanh(y)));
  z.backward();
  const auto ey = exp(Tensor::from_vector({2}, {0.5f, -1.0f})).to_vector();
  for (int i = 0; i < 2; ++i) {
    const float t = std::tanh(ey[i]);
    REQUIRE(x.grad().to_vector()[i] == Approx((2 * ey[i] + (1 - t * t)) * ey[i]).epsilon(1e-5));
  }
}
